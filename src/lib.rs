//! nova-actions: OpenStack Compute's server actions API (`os-instance-actions`) served from an
//! embedded store, indistinguishable from Nova for its clients.

pub mod api;
pub mod auth;
pub mod commands;
pub mod config;
pub mod ephemeral;
pub mod fd_limit;
pub mod generate;
pub mod input;
pub mod json;
pub mod lines;
pub mod metrics;
pub mod model;
pub mod ndjson;
pub mod policy;
pub mod pytext;
pub mod retention;
pub mod store;
pub mod sync;
pub mod testing;
pub mod timeutil;
pub mod tls;
pub mod ui;
pub mod write_request;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{App, HttpServer, web};

use config::Config;
use input::Limits;
use store::Store;

/// A bound, not yet running HTTP service.
pub struct Service {
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    /// What the mirror reports, when `[sync] enabled` (the caller starts it: see `commands`).
    pub sync_status: Option<Arc<sync::status::SyncStatus>>,
    server: actix_web::dev::Server,
    stop_retention: Arc<AtomicBool>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    drain_for: Duration,
}

impl Service {
    /// Serves until stopped (SIGINT/SIGTERM stop it gracefully), then makes the store durable.
    pub async fn run(self) -> std::io::Result<()> {
        actix_web::rt::spawn(stop_on_signals(
            self.server.handle(),
            Arc::clone(&self.in_flight),
            self.drain_for,
        ));
        let served = self.server.await;
        self.stop_retention.store(true, Ordering::Relaxed);
        let store = self.store;
        let flushed = web::block(move || store.durable()).await;
        served?;
        match flushed {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(std::io::Error::other(e.to_string())),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }

    /// A handle that can stop the service from another thread.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// The store `config` names: the embedded one (with its cache size) or PostgreSQL.
pub fn open_store(config: &Config) -> Result<Store, store::StoreError> {
    Store::open_configured(config)
}

pub fn limits(config: &Config) -> Limits {
    Limits {
        max_text: config.storage.max_text_bytes,
        max_line: config.storage.max_import_line_bytes,
    }
}

/// Opens the store named by `config` and binds the listen address; `listen` port 0 picks a free
/// port (see [`Service::addr`]).
pub fn build(config: Config) -> Result<Service, Box<dyn std::error::Error>> {
    let store = Arc::new(open_store(&config)?);
    build_with_store(config, store)
}

pub fn build_with_store(
    config: Config,
    store: Arc<Store>,
) -> Result<Service, Box<dyn std::error::Error>> {
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sync_status = config
        .sync
        .enabled
        .then(|| Arc::new(sync::status::SyncStatus::default()));
    let policy = policy::Watched::new(config.policy.file.clone()).map_err(|e| e.to_string())?;
    let state = web::Data::new(api::AppState {
        policy,
        auth: auth::Authenticator::from_config(&config)?,
        in_flight: Arc::clone(&in_flight),
        metrics: metrics::Metrics::default(),
        store: Arc::clone(&store),
        limits: limits(&config),
        config: config.clone(),
        sync: sync_status.clone(),
        testing: testing::Testing::from_config(&config)?,
    });
    let mut server =
        HttpServer::new(move || App::new().app_data(state.clone()).configure(api::configure))
            .bind(config.server.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    if config.server.workers > 0 {
        server = server.workers(config.server.workers);
    }
    let limits = &config.server;
    let server = server
        .max_connections(limits.max_connections.max(1))
        .keep_alive(Duration::from_secs(limits.keep_alive.seconds()))
        .client_request_timeout(Duration::from_secs(limits.request_timeout.seconds().max(1)))
        .shutdown_timeout(limits.shutdown_timeout.seconds())
        // Signals are ours: the first stops gracefully, a second exits at once.
        .disable_signals();
    let addr = *server.addrs().first().ok_or("no listen address")?;
    let stop_retention = Arc::new(AtomicBool::new(false));
    resume_purges_in_background(&store);
    if let Some(keep) = config.retention.deleted_servers_after {
        let every = Duration::from_secs(config.retention.interval.seconds());
        log::info!(
            "retention: servers deleted more than {keep} ago are purged every {}",
            config.retention.interval
        );
        retention::spawn(
            Arc::clone(&store),
            Duration::from_secs(keep.seconds()),
            every,
            Arc::clone(&stop_retention),
        );
    }
    Ok(Service {
        addr,
        store,
        sync_status,
        server: server.run(),
        stop_retention,
        in_flight,
        drain_for: Duration::from_secs(config.server.shutdown_timeout.seconds()),
    })
}

/// Purges a crash interrupted are finished while the service already answers: their servers
/// read as gone until then, and writing one of those ids again finishes its purge first.
fn resume_purges_in_background(store: &Arc<Store>) {
    if store.purges_pending().unwrap_or(0) == 0 {
        return;
    }
    let store = Arc::clone(store);
    std::thread::spawn(move || match store.resume_purges() {
        Ok(n) => log::info!("{n} interrupted purges finished"),
        Err(e) => log::error!(
            "finishing interrupted purges failed (retried at the next start or retention pass): {e}"
        ),
    });
}

/// SIGTERM or SIGINT: stop accepting, let in-flight requests finish (at most `drain_for`),
/// then stop; `run` flushes the store and the process exits 0. A second signal exits at once.
async fn stop_on_signals(
    handle: actix_web::dev::ServerHandle,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    drain_for: Duration,
) {
    use actix_web::rt::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error!("cannot listen for signals; stop the service with SIGKILL");
        return;
    };
    first_of(term.recv(), int.recv()).await;
    log::info!("signal received: finishing in-flight requests, then flushing the store");
    actix_web::rt::spawn(async move {
        first_of(term.recv(), int.recv()).await;
        log::warn!("second signal: exiting now");
        ephemeral::remove();
        std::process::exit(130);
    });
    handle.pause().await;
    // Drained by our own count: actix's graceful worker stop does not reliably wait for a
    // request whose body is still arriving.
    let deadline = std::time::Instant::now() + drain_for;
    while in_flight.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    handle.stop(false).await;
}

/// Waits for whichever of two futures finishes first.
async fn first_of<A: std::future::Future, B: std::future::Future>(a: A, b: B) {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    std::future::poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() || b.as_mut().poll(cx).is_ready() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}
