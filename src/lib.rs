//! nova-actions: OpenStack Compute's server actions API (`os-instance-actions`) served from an
//! embedded store, indistinguishable from Nova for its clients.

pub mod api;
pub mod auth;
pub mod config;
pub mod input;
pub mod json;
pub mod metrics;
pub mod model;
pub mod ndjson;
pub mod policy;
pub mod pytext;
pub mod retention;
pub mod store;
pub mod timeutil;

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
    server: actix_web::dev::Server,
    background: Arc<AtomicBool>,
}

impl Service {
    /// Serves until stopped (SIGINT/SIGTERM stop it gracefully), then makes the store durable.
    pub async fn run(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.background.store(true, Ordering::Relaxed);
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

pub fn limits(config: &Config) -> Limits {
    Limits {
        max_text: config.storage.max_text_bytes,
    }
}

/// Opens the store named by `config` and binds the listen address; `listen` port 0 picks a free
/// port (see [`Service::addr`]).
pub fn build(config: Config) -> Result<Service, Box<dyn std::error::Error>> {
    let store = Arc::new(Store::open(&config.storage.data_dir)?);
    build_with_store(config, store)
}

pub fn build_with_store(
    config: Config,
    store: Arc<Store>,
) -> Result<Service, Box<dyn std::error::Error>> {
    let policy = policy::Watched::new(config.policy.file.clone()).map_err(|e| e.to_string())?;
    let state = web::Data::new(api::AppState {
        policy,
        auth: auth::Authenticator::from_config(&config),
        metrics: metrics::Metrics::default(),
        store: Arc::clone(&store),
        limits: limits(&config),
        config: config.clone(),
    });
    let mut server =
        HttpServer::new(move || App::new().app_data(state.clone()).configure(api::configure))
            .bind(config.server.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    if config.server.workers > 0 {
        server = server.workers(config.server.workers);
    }
    let addr = *server.addrs().first().ok_or("no listen address")?;
    let background = Arc::new(AtomicBool::new(false));
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
            Arc::clone(&background),
        );
    }
    Ok(Service {
        addr,
        store,
        server: server.run(),
        background,
    })
}
