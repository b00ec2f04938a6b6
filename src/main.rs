use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use nova_actions::config::Config;
use nova_actions::store::Store;
use nova_actions::{build, limits, ndjson};

/// OpenStack Compute's server actions API (os-instance-actions) from an embedded store.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file; when it is the default and missing, built-in defaults apply.
    #[arg(long, global = true, default_value = "config.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API.
    Serve {
        /// Listen address, overriding [server] listen.
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<SocketAddr>,
        /// Data directory, overriding [storage] data_dir.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Import NDJSON histories (one server per line) into a stopped store. Idempotent.
    Import {
        /// The NDJSON file, or - for standard input.
        file: PathBuf,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Export every server's history as NDJSON from a stopped store.
    Export {
        /// Write here instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nova-actions: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let default_path = cli.config.as_os_str() == "config.toml";
    let mut config = Config::load(&cli.config, default_path)?;
    match cli.command {
        Command::Serve { listen, data_dir } => {
            if let Some(addr) = listen {
                config.server.listen = addr;
            }
            if let Some(dir) = data_dir {
                config.storage.data_dir = dir;
            }
            serve(config)
        }
        Command::Import { file, data_dir } => {
            if let Some(dir) = data_dir {
                config.storage.data_dir = dir;
            }
            import(&config, &file)
        }
        Command::Export { output, data_dir } => {
            if let Some(dir) = data_dir {
                config.storage.data_dir = dir;
            }
            export(&config, output)
        }
    }
}

fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    actix_web::rt::System::new().block_on(async move {
        let data_dir = config.storage.data_dir.clone();
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

fn import(config: &Config, file: &PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(&config.storage.data_dir)?;
    let input: Box<dyn io::Read> = if file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(file).map_err(|e| format!("{}: {e}", file.display()))?)
    };
    let interactive = io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let report = |line: u64, c: &nova_actions::store::ImportCounts| {
        if interactive && line % 100 == 0 {
            let rate = c.actions as f64 / started.elapsed().as_secs_f64().max(1e-3);
            eprint!(
                "\rline {line}: {} servers, {} actions ({rate:.0} actions/s)",
                c.servers, c.actions
            );
        }
    };
    let result = ndjson::import(
        &store,
        BufReader::with_capacity(1 << 20, input),
        limits(config),
        report,
    );
    if interactive {
        eprintln!();
    }
    match result {
        Ok(c) => {
            eprintln!(
                "imported {} servers, {} actions, {} events ({} actions already stored) in {:.1}s",
                c.servers,
                c.actions,
                c.events,
                c.unchanged,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err((c, e)) => {
            Err(format!("{e} (the {} servers before it were imported)", c.servers).into())
        }
    }
}

fn export(config: &Config, output: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(&config.storage.data_dir)?;
    let servers = match output {
        Some(path) => {
            let file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let count = ndjson::export(&store, io::BufWriter::new(&file))?;
            file.sync_all()?;
            count
        }
        None => ndjson::export(&store, io::BufWriter::new(io::stdout().lock()))?,
    };
    io::stderr().flush().ok();
    eprintln!("exported {servers} servers");
    Ok(())
}
