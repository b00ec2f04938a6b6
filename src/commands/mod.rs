//! What the command-line commands do, apart from parsing them (`src/main.rs`).

mod health_probe;
mod log_writer;
mod progress;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use health_probe::health;
pub use log_writer::BatchedStderr;
use progress::{Counting, Progress};

use crate::config::Config;
use crate::store::Store;
use crate::{build, limits, ndjson, timeutil};

/// Why a command failed, which decides the exit status.
#[derive(Debug)]
pub enum CommandError {
    /// The work failed (storage, I/O, service): exit 1.
    Work(String),
    /// Bad usage or configuration: exit 2.
    Usage(String),
    /// An import stopped at a bad line: exit 3.
    BadInput(String),
}

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Work(_) => 1,
            CommandError::Usage(_) => 2,
            CommandError::BadInput(_) => 3,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            CommandError::Work(m) | CommandError::Usage(m) | CommandError::BadInput(m) => m,
        }
    }
}

impl<E: std::fmt::Display> From<E> for CommandError {
    fn from(e: E) -> Self {
        CommandError::Work(e.to_string())
    }
}

pub fn serve(config: Config) -> Result<(), CommandError> {
    actix_web::rt::System::new().block_on(async move {
        let data_dir = config.storage.data_dir.clone();
        match crate::fd_limit::raise_open_files() {
            Ok((before, after)) if after > before => {
                log::info!("open-file limit raised from {before} to {after}");
            }
            Ok(_) => {}
            Err(e) => log::warn!("could not raise the open-file limit: {e}"),
        }
        let service = build(config)?;
        log::info!(
            "serving os-instance-actions on http://{} (store: {})",
            service.addr,
            data_dir.display()
        );
        service.run().await?;
        log::info!("stopped; store flushed");
        Ok(())
    })
}

fn open_store(config: &Config) -> Result<Store, CommandError> {
    crate::open_store(config).map_err(|e| CommandError::Work(e.to_string()))
}

pub fn import(config: &Config, file: &Path) -> Result<(), CommandError> {
    let (input, total): (Box<dyn Read>, Option<u64>) = if file.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let f =
            File::open(file).map_err(|e| CommandError::Work(format!("{}: {e}", file.display())))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len)
    };
    let store = open_store(config)?;
    let read = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: input,
        read: Arc::clone(&read),
    };
    let mut progress = Progress::new(total);
    let result = ndjson::import(
        &store,
        BufReader::with_capacity(1 << 20, counting),
        limits(config),
        |c| progress.update(read.load(Ordering::Relaxed), c),
    );
    progress.finish();
    let elapsed = progress.started.elapsed().as_secs_f64();
    match result {
        Ok(c) => {
            eprintln!(
                "imported {} servers, {} actions, {} events ({} actions already stored) in {elapsed:.1}s",
                c.servers, c.actions, c.events, c.unchanged
            );
            Ok(())
        }
        Err((c, e @ (ndjson::ImportError::Line { .. } | ndjson::ImportError::TooLong(_)))) => {
            Err(CommandError::BadInput(format!(
                "{e} (the {} servers before it were imported)",
                c.servers
            )))
        }
        Err((c, e)) => Err(CommandError::Work(format!(
            "{e} (the {} servers before it were imported)",
            c.servers
        ))),
    }
}

pub fn export(config: &Config, output: Option<PathBuf>) -> Result<(), CommandError> {
    let store = open_store(config)?;
    let servers = match output {
        Some(path) => {
            let file = File::create(&path)
                .map_err(|e| CommandError::Work(format!("{}: {e}", path.display())))?;
            let count = ndjson::export(&store, io::BufWriter::new(&file))?;
            file.sync_all()?;
            count
        }
        None => ndjson::export(&store, io::BufWriter::new(io::stdout().lock()))?,
    };
    eprintln!("exported {servers} servers");
    Ok(())
}

pub fn generate(config: &Config, shape: crate::generate::Shape) -> Result<(), CommandError> {
    let store = open_store(config)?;
    let total = shape.servers.saturating_mul(shape.actions_per_server);
    // Progress counts actions here, where an import counts bytes.
    let mut progress = Progress::new(Some(total));
    let counts = crate::generate::generate(&store, shape, |c| progress.update(c.actions, c))?;
    progress.finish();
    eprintln!(
        "generated {} servers, {} actions, {} events in {:.1}s",
        counts.servers,
        counts.actions,
        counts.events,
        progress.started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn purge(config: &Config, before: &str) -> Result<(), CommandError> {
    let cutoff = timeutil::parse_iso8601(before).ok_or_else(|| {
        CommandError::Usage(format!("--before {before}: not an ISO 8601 date or time"))
    })?;
    let store = open_store(config)?;
    let (servers, actions) = store.purge_deleted_before(cutoff)?;
    eprintln!(
        "purged {servers} servers deleted before {} ({actions} actions with their events)",
        timeutil::format_micros(cutoff)
    );
    Ok(())
}
