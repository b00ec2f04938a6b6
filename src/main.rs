use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use nova_actions::config::Config;
use nova_actions::store::{ImportCounts, Store};
use nova_actions::{build, limits, ndjson, timeutil};

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
    /// Serve the API until SIGINT/SIGTERM.
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
    /// Print the effective configuration (file, environment and defaults merged).
    CheckConfig,
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
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Print the effective rules (defaults merged with [policy] file) as a commented policy.yaml.
    Sample,
}

/// Why a command failed, which decides the exit status.
enum Failure {
    Work(String),
    Usage(String),
    BadInput(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Work(e.to_string())
    }
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
    let (code, message) = match result {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Work(m)) => (1, m),
        Err(Failure::Usage(m)) => (2, m),
        Err(Failure::BadInput(m)) => (3, m),
    };
    eprintln!("nova-actions: {message}");
    ExitCode::from(code)
}

/// Log lines (one access line per request) gathered in memory and written to standard error
/// ten times a second: a write and a flush per line cost the service ~40% of its read
/// throughput (BENCHMARKS.md). The price: a crash can lose the last tenth of a second of log.
#[derive(Clone)]
struct BatchedStderr(Arc<std::sync::Mutex<Vec<u8>>>);

impl BatchedStderr {
    fn start() -> BatchedStderr {
        let log = BatchedStderr(Arc::new(std::sync::Mutex::new(Vec::with_capacity(1 << 16))));
        let flusher = log.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(100));
                    flusher.flush_now();
                }
            })
            .expect("the log writer starts");
        log
    }

    fn flush_now(&self) {
        let pending = std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if !pending.is_empty() {
            let _ = io::stderr().lock().write_all(&pending);
        }
    }
}

impl Write for BatchedStderr {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut buffer = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buffer.extend_from_slice(bytes);
        // A burst bigger than this goes out at once rather than piling up.
        if buffer.len() > 1 << 20 {
            let _ = io::stderr().lock().write_all(&std::mem::take(&mut *buffer));
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Version = cli.command {
        println!("nova-actions {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    if let Command::Health { addr } = cli.command {
        return health(addr);
    }
    let default_path = cli.config.as_os_str() == "config.toml";
    let mut config =
        Config::load(&cli.config, default_path).map_err(|e| Failure::Usage(e.to_string()))?;
    let mut data_dir_flag = |dir: Option<PathBuf>| {
        if let Some(dir) = dir {
            config.storage.data_dir = dir;
        }
    };
    match cli.command {
        Command::Serve { listen, data_dir } => {
            data_dir_flag(data_dir);
            if let Some(addr) = listen {
                config.server.listen = addr;
            }
            serve(config)
        }
        Command::Import { file, data_dir } => {
            data_dir_flag(data_dir);
            import(&config, &file)
        }
        Command::Export { output, data_dir } => {
            data_dir_flag(data_dir);
            export(&config, output)
        }
        Command::Purge { before, data_dir } => {
            data_dir_flag(data_dir);
            purge(&config, &before)
        }
        Command::Generate {
            servers,
            actions,
            events,
            seed,
            data_dir,
        } => {
            data_dir_flag(data_dir);
            generate(
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
        Command::CheckConfig => {
            print!("{}", config.render());
            Ok(())
        }
        Command::Policy {
            command: PolicyCommand::Sample,
        } => {
            let watched = nova_actions::policy::Watched::new(config.policy.file.clone())
                .map_err(|e| Failure::Usage(e.to_string()))?;
            print!("{}", watched.current().sample());
            Ok(())
        }
        Command::Health { .. } | Command::Version => unreachable!("handled above"),
    }
}

fn serve(config: Config) -> Result<(), Failure> {
    actix_web::rt::System::new().block_on(async move {
        let data_dir = config.storage.data_dir.clone();
        match nova_actions::fd_limit::raise_open_files() {
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

fn open_store(config: &Config) -> Result<Store, Failure> {
    nova_actions::open_store(config).map_err(|e| Failure::Work(e.to_string()))
}

/// Counts the bytes read through it, so progress can say how far into the file it is.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Progress on standard error: a redrawn line with rate and ETA on a terminal, a plain line
/// every ten seconds otherwise (logs, CI).
struct Progress {
    started: Instant,
    last: Instant,
    terminal: bool,
    total_bytes: Option<u64>,
}

impl Progress {
    fn new(total_bytes: Option<u64>) -> Progress {
        let now = Instant::now();
        Progress {
            started: now,
            last: now,
            terminal: io::stderr().is_terminal(),
            total_bytes,
        }
    }

    fn update(&mut self, bytes: u64, counts: &ImportCounts) {
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = counts.actions as f64 / secs;
        let position = match self.total_bytes {
            Some(total) if total > 0 => {
                let fraction = bytes as f64 / total as f64;
                let eta = if fraction > 0.0 {
                    secs / fraction - secs
                } else {
                    0.0
                };
                format!("{:5.1}% ETA {:.0}s, ", fraction * 100.0, eta.max(0.0))
            }
            _ => String::new(),
        };
        let line = format!(
            "{position}{} servers, {} actions ({rate:.0} actions/s)",
            counts.servers, counts.actions
        );
        if self.terminal {
            eprint!("\r{line}    ");
        } else {
            eprintln!("import: {line}");
        }
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

fn import(config: &Config, file: &Path) -> Result<(), Failure> {
    let (input, total): (Box<dyn Read>, Option<u64>) = if file.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let f = File::open(file).map_err(|e| Failure::Work(format!("{}: {e}", file.display())))?;
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
        |_, c| progress.update(read.load(Ordering::Relaxed), c),
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
            Err(Failure::BadInput(format!(
                "{e} (the {} servers before it were imported)",
                c.servers
            )))
        }
        Err((c, e)) => Err(Failure::Work(format!(
            "{e} (the {} servers before it were imported)",
            c.servers
        ))),
    }
}

fn export(config: &Config, output: Option<PathBuf>) -> Result<(), Failure> {
    let store = open_store(config)?;
    let servers = match output {
        Some(path) => {
            let file = File::create(&path)
                .map_err(|e| Failure::Work(format!("{}: {e}", path.display())))?;
            let count = ndjson::export(&store, io::BufWriter::new(&file))?;
            file.sync_all()?;
            count
        }
        None => ndjson::export(&store, io::BufWriter::new(io::stdout().lock()))?,
    };
    eprintln!("exported {servers} servers");
    Ok(())
}

fn generate(config: &Config, shape: nova_actions::generate::Shape) -> Result<(), Failure> {
    let store = open_store(config)?;
    let total = shape.servers.saturating_mul(shape.actions_per_server);
    // Progress counts actions here, where an import counts bytes.
    let mut progress = Progress::new(Some(total));
    let counts =
        nova_actions::generate::generate(&store, shape, |c| progress.update(c.actions, c))?;
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

fn purge(config: &Config, before: &str) -> Result<(), Failure> {
    let cutoff = timeutil::parse_iso8601(before).ok_or_else(|| {
        Failure::Usage(format!("--before {before}: not an ISO 8601 date or time"))
    })?;
    let store = open_store(config)?;
    let (servers, actions) = store.purge_deleted_before(cutoff)?;
    eprintln!(
        "purged {servers} servers deleted before {} ({actions} actions with their events)",
        timeutil::format_micros(cutoff)
    );
    Ok(())
}

/// A dependency-free probe for container health checks.
fn health(addr: SocketAddr) -> Result<(), Failure> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /healthcheck HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer.lines().next().unwrap_or("");
    if status.split(' ').nth(1) == Some("200") {
        println!("OK");
        Ok(())
    } else {
        Err(Failure::Work(format!("unhealthy: {status}")))
    }
}
