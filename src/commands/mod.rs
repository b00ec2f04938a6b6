//! What the command-line commands do, apart from parsing them (`src/main.rs`).

mod health_probe;
mod log_writer;
mod progress;

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use health_probe::health;
pub use log_writer::BatchedStderr;
use progress::{Counting, Progress};

use crate::config::Config;
use crate::store::Store;
use crate::{limits, ndjson, timeutil};

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

/// What `serve` does beyond serving the configured store.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// A fresh embedded store in a temporary directory, removed at exit.
    pub ephemeral: bool,
    /// NDJSON imported before the port opens.
    pub seed: Option<std::path::PathBuf>,
}

pub fn serve(mut config: Config, options: ServeOptions) -> Result<(), CommandError> {
    if options.ephemeral {
        let dir = crate::ephemeral::create()
            .map_err(|e| CommandError::Work(format!("cannot make a temporary store: {e}")))?;
        config.storage.backend = crate::config::Backend::Sled;
        config.storage.data_dir = dir;
    }
    let served = serve_until_stopped(config, options.seed.as_deref());
    crate::ephemeral::remove();
    served
}

fn serve_until_stopped(config: Config, seed: Option<&std::path::Path>) -> Result<(), CommandError> {
    // Without a seed the service starts even while its database is away (it answers 503
    // until it is back); a seed needs the store now.
    let store = match seed {
        Some(file) => {
            let store = open_store(&config)?;
            seed_store(&store, &config, file)?;
            store
        }
        None => crate::open_store(&config).map_err(|e| CommandError::Work(e.to_string()))?,
    };
    let store = Arc::new(store);
    let kept = Arc::clone(&store);
    let served = actix_web::rt::System::new().block_on(async move {
        match crate::fd_limit::raise_open_files() {
            Ok((before, after)) if after > before => {
                log::info!("open-file limit raised from {before} to {after}");
            }
            Ok(_) => {}
            Err(e) => log::warn!("could not raise the open-file limit: {e}"),
        }
        let sync = config.sync.clone();
        let service = crate::build_with_store(config, store)?;
        log::info!(
            "serving os-instance-actions on http://{} (store: {})",
            service.addr,
            service.store.describe()
        );
        announce(service.addr);
        if let Some(status) = service.sync_status.clone() {
            log::info!("mirroring {} every {}", upstream_name(&sync), sync.interval);
            let store = std::sync::Arc::clone(&service.store);
            actix_web::rt::spawn(async move {
                let _ = crate::sync::run(store, sync, false, status).await;
            });
        }
        service.run().await?;
        log::info!("stopped; store flushed");
        Ok::<(), CommandError>(())
    });
    // Only once nothing else holds the store (a mirror pass or retention sweep still running
    // keeps it, and then the next start simply replays more).
    if let (Ok(()), Ok(store)) = (&served, Arc::try_unwrap(kept)) {
        store.close()?;
    }
    served
}

/// The one line a harness reads to know the service is up and where: the listening socket is
/// open (connections queue from now on), and nothing else is ever written to standard output.
fn announce(addr: std::net::SocketAddr) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "nova-actions listening on http://{addr}");
    let _ = out.flush();
}

/// `serve --seed FILE`: the file imported before the port opens.
fn seed_store(store: &Store, config: &Config, file: &Path) -> Result<(), CommandError> {
    let input =
        File::open(file).map_err(|e| CommandError::Work(format!("{}: {e}", file.display())))?;
    let result = ndjson::import(
        store,
        BufReader::with_capacity(1 << 20, input),
        limits(config),
        |_| {},
    );
    match result {
        Ok(c) => {
            log::info!(
                "seeded from {}: {} servers, {} actions, {} events",
                file.display(),
                c.servers,
                c.actions,
                c.events
            );
            Ok(())
        }
        Err((_, e @ (ndjson::ImportError::Line { .. } | ndjson::ImportError::TooLong(_)))) => Err(
            CommandError::BadInput(format!("--seed {}: {e}", file.display())),
        ),
        Err((_, e)) => Err(CommandError::Work(format!(
            "--seed {}: {e}",
            file.display()
        ))),
    }
}

/// `sync [--once]`: mirror the upstream Nova into the store (see `crate::sync`).
pub fn sync(config: &Config, once: bool) -> Result<(), CommandError> {
    let store = Arc::new(open_store(config)?);
    let sync = config.sync.clone();
    log::info!(
        "mirroring {} into {}{}",
        upstream_name(&sync),
        store.describe(),
        if once { " (one pass)" } else { "" }
    );
    let status = Arc::new(crate::sync::status::SyncStatus::default());
    let started = std::time::Instant::now();
    let outcome =
        actix_web::rt::System::new().block_on(crate::sync::run(store, sync, once, status));
    match outcome {
        Ok(report) => {
            log::info!(
                "sync pass done in {:.1} s: {} servers, {} actions, {} events copied; {} upstream requests; the copy is current",
                started.elapsed().as_secs_f64(),
                report.servers,
                report.actions,
                report.events,
                report.requests
            );
            Ok(())
        }
        Err(e) => Err(CommandError::Work(format!("sync: {e}"))),
    }
}

fn upstream_name(sync: &crate::config::SyncConfig) -> String {
    match (sync.endpoint.as_str(), sync.auth_url.as_str()) {
        ("", "") => "(no upstream configured)".into(),
        ("", auth) => format!("the compute endpoint of {auth}'s catalog"),
        (endpoint, _) => endpoint.to_string(),
    }
}

fn open_store(config: &Config) -> Result<Store, CommandError> {
    let store = crate::open_store(config).map_err(|e| CommandError::Work(e.to_string()))?;
    // A database that cannot be reached yet gets three connection attempts' time.
    let wait = std::time::Duration::from_secs(3 * config.postgres.connect_timeout.seconds().max(1));
    store
        .wait_until_ready(wait)
        .map_err(|e| CommandError::Work(format!("{}: {e}", store.describe())))?;
    Ok(store)
}

/// `check-config`: the effective configuration, then (for a database) its schema version.
pub fn check_config(config: &Config) -> Result<(), CommandError> {
    print!("{}", config.render());
    if config.storage.backend == crate::config::Backend::Postgres {
        let store = open_store(config)?;
        if let Some(version) = store.schema_version() {
            let (at, newest) = version?;
            println!(
                "# {}: schema version {at} (this binary's newest: {newest})",
                store.describe()
            );
        }
    }
    Ok(())
}

/// Where `copy` reads or writes: `sled:DIR` or `postgres:URL` (a bare `postgresql://` URL too).
pub fn store_at(spec: &str, base: &Config) -> Result<Config, CommandError> {
    let mut config = base.clone();
    if let Some(dir) = spec.strip_prefix("sled:") {
        config.storage.backend = crate::config::Backend::Sled;
        config.storage.data_dir = PathBuf::from(dir);
    } else if let Some(url) = spec
        .strip_prefix("postgres:")
        .filter(|u| u.contains("://"))
        .or_else(|| spec.starts_with("postgresql://").then_some(spec))
        .or_else(|| spec.starts_with("postgres://").then_some(spec))
    {
        config.storage.backend = crate::config::Backend::Postgres;
        config.postgres.url = url.to_string();
    } else {
        return Err(CommandError::Usage(format!(
            "{}: expected sled:DIR or postgres:postgresql://USER@HOST:PORT/DB",
            crate::config::redacted_url(spec)
        )));
    }
    Ok(config)
}

/// `copy`: every server's history from one store into another, server by server (one history
/// in memory at a time, as an import line). Idempotent: a copy run again, or after an
/// interruption, stores what is missing and leaves what is there.
pub fn copy(from: &Config, to: &Config) -> Result<(), CommandError> {
    let source = open_store(from)?;
    let target = open_store(to)?;
    eprintln!("copying {} -> {}", source.describe(), target.describe());
    let started = std::time::Instant::now();
    let mut counts = crate::store::ImportCounts::default();
    let mut after = None;
    while let Some((id, server)) = source.next_server_id(after.as_ref())? {
        let history = crate::model::ServerHistory {
            uuid: id,
            server,
            actions: source.history(&id)?,
        };
        counts.add(target.import_server(&history)?);
        if counts.servers % 1000 == 0 {
            target.durable()?;
            eprintln!(
                "  {} servers, {} actions ({:.0} actions/s)",
                counts.servers,
                counts.actions + counts.unchanged,
                (counts.actions + counts.unchanged) as f64 / started.elapsed().as_secs_f64()
            );
        }
        after = Some(id);
    }
    target.close()?;
    eprintln!(
        "copied {} servers, {} actions, {} events ({} actions already there) in {:.1}s",
        counts.servers,
        counts.actions,
        counts.events,
        counts.unchanged,
        started.elapsed().as_secs_f64()
    );
    Ok(())
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
    let closed = store.close();
    progress.finish();
    let elapsed = progress.started.elapsed().as_secs_f64();
    closed?;
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
    store.close()?;
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
    store.close()?;
    eprintln!(
        "purged {servers} servers deleted before {} ({actions} actions with their events)",
        timeutil::format_micros(cutoff)
    );
    Ok(())
}
