use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use nova_actions::commands::{self, BatchedStderr, CommandError};
use nova_actions::config::Config;

/// OpenStack Compute's server actions API (os-instance-actions) from an embedded store.
///
/// Exit status: 0 success; 1 the work failed (storage, I/O, service); 2 bad usage or
/// configuration; 3 an import stopped at a bad line (the lines before it are stored).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file; when it is the default and missing, built-in defaults apply.
    /// Environment variables NOVA_ACTIONS__<SECTION>__<KEY> override it.
    #[arg(
        long,
        global = true,
        default_value = "config.toml",
        value_name = "PATH"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API until SIGINT/SIGTERM. Once it accepts connections it prints one line on
    /// standard output, ending with its base URL (port 0 picks a free port).
    Serve {
        /// Listen address, overriding [server] listen.
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<SocketAddr>,
        /// Data directory, overriding [storage] data_dir.
        #[arg(long, value_name = "DIR", conflicts_with = "ephemeral")]
        data_dir: Option<PathBuf>,
        /// A fresh embedded store in a temporary directory, removed when the service stops.
        #[arg(long)]
        ephemeral: bool,
        /// Import this NDJSON file before the port opens; a bad line fails the start (exit 3).
        #[arg(long, value_name = "FILE")]
        seed: Option<PathBuf>,
        /// Turn on fault injection ([testing] fault_injection).
        #[arg(long)]
        fault_injection: bool,
        /// Turn on the request journal ([testing] journal).
        #[arg(long)]
        journal: bool,
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
    /// Remove servers soft-deleted before a date, with their actions and events, for good.
    Purge {
        /// ISO 8601 date or time (UTC when no zone is given), e.g. 2024-01-01.
        #[arg(long, value_name = "DATE")]
        before: String,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Fill a store with synthetic history for benchmarks (N servers × M actions × K events).
    Generate {
        #[arg(long, default_value_t = 100)]
        servers: u64,
        #[arg(long, default_value_t = 100)]
        actions: u64,
        #[arg(long, default_value_t = 3)]
        events: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Mirror a real Nova's action history ([sync]) until stopped; --once: one pass, exit 0 when
    /// the copy is current.
    Sync {
        #[arg(long)]
        once: bool,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Print the effective configuration (file, environment and defaults merged).
    CheckConfig,
    /// Copy every server's history from one store to another (idempotent, resumable by
    /// running it again): `--from sled:DIR --to postgres:postgresql://USER@HOST/DB`, or back.
    Copy {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
    /// Policy tools.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Ask a running service's /healthcheck; exit 0 when it answers 200.
    Health {
        #[arg(long, default_value = "127.0.0.1:8774", value_name = "ADDR:PORT")]
        addr: SocketAddr,
    },
    /// Print this service's OpenAPI 3.1 description (what GET /openapi.json serves).
    Openapi,
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Print the effective rules (defaults merged with [policy] file) as a commented policy.yaml.
    Sample,
}

/// sled allocates and frees node buffers on every write and read; mimalloc makes that markedly
/// cheaper than glibc's allocator (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let log = BatchedStderr::start();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .target(env_logger::Target::Pipe(Box::new(log.clone())))
        .init();
    let cli = Cli::parse();
    let result = run(cli);
    log.flush_now();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nova-actions: {}", e.message());
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), CommandError> {
    if let Command::Version = cli.command {
        println!("nova-actions {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    if let Command::Openapi = cli.command {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(nova_actions::api::OPENAPI.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| CommandError::Work(format!("writing to standard output: {e}")))?;
        return Ok(());
    }
    if let Command::Health { addr } = cli.command {
        return commands::health(addr);
    }
    let default_path = cli.config.as_os_str() == "config.toml";
    let mut config =
        Config::load(&cli.config, default_path).map_err(|e| CommandError::Usage(e.to_string()))?;
    let backend = config.storage.backend;
    let mut data_dir_flag = |dir: Option<PathBuf>| -> Result<(), CommandError> {
        if let Some(dir) = dir {
            if backend != nova_actions::config::Backend::Sled {
                return Err(CommandError::Usage(format!(
                    "--data-dir {}: the store is PostgreSQL ([storage] backend); --data-dir names an embedded store",
                    dir.display()
                )));
            }
            config.storage.data_dir = dir;
        }
        Ok(())
    };
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            ephemeral,
            seed,
            fault_injection,
            journal,
        } => {
            data_dir_flag(data_dir)?;
            config.testing.fault_injection |= fault_injection;
            config.testing.journal |= journal;
            if let Some(addr) = listen {
                config.server.listen = addr;
            }
            commands::serve(config, commands::ServeOptions { ephemeral, seed })
        }
        Command::Import { file, data_dir } => {
            data_dir_flag(data_dir)?;
            commands::import(&config, &file)
        }
        Command::Export { output, data_dir } => {
            data_dir_flag(data_dir)?;
            commands::export(&config, output)
        }
        Command::Purge { before, data_dir } => {
            data_dir_flag(data_dir)?;
            commands::purge(&config, &before)
        }
        Command::Generate {
            servers,
            actions,
            events,
            seed,
            data_dir,
        } => {
            data_dir_flag(data_dir)?;
            commands::generate(
                &config,
                nova_actions::generate::Shape {
                    servers,
                    actions_per_server: actions,
                    events_per_action: events,
                    seed,
                    start: 1_500_000_000_000_000,
                },
            )
        }
        Command::Sync { once, data_dir } => {
            data_dir_flag(data_dir)?;
            commands::sync(&config, once)
        }
        Command::CheckConfig => commands::check_config(&config),
        Command::Copy { from, to } => {
            let (from, to) = (
                commands::store_at(&from, &config)?,
                commands::store_at(&to, &config)?,
            );
            commands::copy(&from, &to)
        }
        Command::Policy {
            command: PolicyCommand::Sample,
        } => {
            let watched = nova_actions::policy::Watched::new(config.policy.file.clone())
                .map_err(|e| CommandError::Usage(e.to_string()))?;
            print!("{}", watched.current().sample());
            Ok(())
        }
        Command::Health { .. } | Command::Openapi | Command::Version => {
            unreachable!("handled above")
        }
    }
}
