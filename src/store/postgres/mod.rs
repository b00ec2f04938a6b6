//! The PostgreSQL backend: several stateless nodes over one database.
//!
//! Rows carry the embedded store's key design: actions keyed `(instance_uuid, start_time, seq)`
//! and read newest first as a backward index scan, a unique `(instance_uuid, request_id,
//! start_time, seq)` index for show and markers, `(instance_uuid, updated_at)` for time
//! filters. Every key starts with `instance_uuid`, so the tables can be distributed by it. A
//! record column holds the same versioned encoding as the embedded store (bytes, so any text a
//! client sent, NUL included, round-trips).
//!
//! The client is async (tokio-postgres with a deadpool pool) and runs on a small runtime of
//! its own; this type's methods block on it, as the embedded store's do on its disk, so both
//! backends sit behind one synchronous interface called from blocking threads.

mod action_write;
mod read;
mod schema;
mod write;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use tokio_postgres::NoTls;
use uuid::Uuid;

use super::{Result, StoreError};
use crate::config::{PostgresConfig, redacted_url};

pub use read::{NEWEST_BY_REQUEST, listing_sql, page_sql};
pub use schema::LATEST as SCHEMA_VERSION;

/// Whether the node can use the database yet.
#[derive(Debug, Clone)]
enum Readiness {
    /// Still connecting (or migrating); the text says what the last attempt met.
    Waiting(String),
    Ready,
    /// The schema is newer than this binary: nothing will change that but an upgrade.
    Refused(String),
}

pub struct PgStore {
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    config: tokio_postgres::Config,
    readiness: Arc<Mutex<Readiness>>,
    /// The longest one store call may take: a statement plus waiting for a connection.
    call_limit: Duration,
    describe: String,
}

impl PgStore {
    /// Connects to the database `config` names and brings its schema up to date. A database
    /// that cannot be reached is retried in the background with backoff (one log line per
    /// attempt); until then every call fails with `Unavailable`. A schema newer than this
    /// binary is refused at once.
    pub fn connect(config: &PostgresConfig) -> Result<PgStore> {
        let pg = client_config(config)?;
        let describe = redacted_url(&config.url);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot start the client: {e}")))?;
        let connect_timeout = Duration::from_secs(config.connect_timeout.seconds().max(1));
        let manager = Manager::from_connect(
            pg.clone(),
            OnRuntime(runtime.handle().clone()),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(connect_timeout))
            .create_timeout(Some(connect_timeout))
            .recycle_timeout(Some(connect_timeout))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let store = PgStore {
            runtime: Some(runtime),
            pool,
            config: pg,
            readiness: Arc::new(Mutex::new(Readiness::Waiting("not tried yet".into()))),
            call_limit: connect_timeout
                + Duration::from_secs(config.statement_timeout.seconds().max(1))
                + Duration::from_secs(1),
            describe,
        };
        // The first attempt is made here, so that a reachable database with a schema from the
        // future stops the start; later ones in the background.
        match store.off_runtime(|s| s.block_on_raw(schema::migrate(&s.config))) {
            Ok(version) => {
                log::info!("PostgreSQL at {}: schema version {version}", store.describe);
                store.set(Readiness::Ready);
            }
            Err(StoreError::Open { reason, .. }) => {
                return Err(StoreError::Open {
                    path: store.describe.clone().into(),
                    reason,
                });
            }
            Err(e) => {
                log::warn!(
                    "cannot reach PostgreSQL at {} (attempt 1): {e}; retrying in the background",
                    store.describe
                );
                store.set(Readiness::Waiting(e.to_string()));
                store.keep_connecting();
            }
        }
        Ok(store)
    }

    pub fn describe(&self) -> String {
        format!("postgres {}", self.describe)
    }

    /// Waits (at most `limit`) until the database is reachable and its schema current.
    pub fn wait_until_ready(&self, limit: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            match self.ready() {
                Err(StoreError::Unavailable(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// The schema version the database is at (for `check-config`).
    pub fn schema_version(&self) -> Result<i32> {
        self.call(|client| async move { schema::current_version(&client).await })
    }

    fn set(&self, readiness: Readiness) {
        *self
            .readiness
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = readiness;
    }

    fn ready(&self) -> Result<()> {
        match &*self
            .readiness
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Readiness::Ready => Ok(()),
            Readiness::Waiting(why) => Err(StoreError::Unavailable(format!(
                "not connected to the database yet ({why})"
            ))),
            Readiness::Refused(why) => Err(StoreError::Open {
                path: self.describe.clone().into(),
                reason: why.clone(),
            }),
        }
    }

    /// Retries connecting and migrating with backoff until it works, one log line an attempt.
    fn keep_connecting(&self) {
        let (config, readiness, describe) = (
            self.config.clone(),
            Arc::clone(&self.readiness),
            self.describe.clone(),
        );
        self.runtime().spawn(async move {
            let mut wait = Duration::from_millis(500);
            for attempt in 2u64.. {
                tokio::time::sleep(wait).await;
                let (next, message) = match schema::migrate(&config).await {
                    Ok(version) => {
                        log::info!(
                            "connected to PostgreSQL at {describe} (attempt {attempt}): schema version {version}"
                        );
                        (Readiness::Ready, None)
                    }
                    Err(StoreError::Open { reason, .. }) => {
                        log::error!("PostgreSQL at {describe}: {reason}");
                        (Readiness::Refused(reason), None)
                    }
                    Err(e) => (Readiness::Waiting(e.to_string()), Some(e)),
                };
                let done = message.is_none();
                if let Some(e) = message {
                    log::warn!(
                        "cannot reach PostgreSQL at {describe} (attempt {attempt}): {e}; retrying in {:.1}s",
                        (wait * 2).min(Duration::from_secs(10)).as_secs_f64()
                    );
                }
                *readiness.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
                if done {
                    return;
                }
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        });
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the store")
    }

    /// Runs `work` on a plain thread when called from inside an async runtime (building the
    /// service happens in one), where blocking on another runtime is not allowed.
    fn off_runtime<T: Send>(&self, work: impl FnOnce(&PgStore) -> T + Send) -> T {
        if tokio::runtime::Handle::try_current().is_err() {
            return work(self);
        }
        std::thread::scope(|scope| {
            scope
                .spawn(|| work(self))
                .join()
                .expect("a store call panicked")
        })
    }

    fn block_on_raw<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        self.runtime().block_on(self.within_limit(work))
    }

    /// `work`, cut off (as unavailable) once it has taken longer than one store call may.
    async fn within_limit<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let limit = self.call_limit;
        match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {}s",
                limit.as_secs()
            ))),
        }
    }

    /// One store call, blocking: a pooled connection, `work` on it, within the call limit.
    fn call<T, F>(&self, work: impl FnOnce(Object) -> F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        self.runtime().block_on(self.call_async(work))
    }

    /// One store call from async code (an HTTP worker awaits it in place: the connection's
    /// socket is served by this store's runtime, so no thread blocks).
    async fn call_async<T, F>(&self, work: impl FnOnce(Object) -> F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        self.ready()?;
        self.within_limit(async {
            let client = self.pool.get().await.map_err(pool_error)?;
            work(client).await
        })
        .await
    }

    pub fn check(&self) -> Result<()> {
        self.call(|client| async move {
            client.simple_query("SELECT 1").await.map_err(db_error)?;
            Ok(())
        })
    }

    pub fn size_on_disk(&self) -> Result<u64> {
        self.call(|client| async move {
            let row = client
                .query_one(
                    "SELECT pg_total_relation_size('servers') + pg_total_relation_size('actions')",
                    &[],
                )
                .await
                .map_err(db_error)?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // The last handle may go on an async worker, where waiting for threads is not allowed.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The client configuration: the URL, a password from the configuration or `PGPASSWORD` when
/// the URL has none, the timeouts, and `synchronous_commit` on, whatever the server's default
/// (a write is acknowledged only once its commit is durable).
fn client_config(config: &PostgresConfig) -> Result<tokio_postgres::Config> {
    let mut pg: tokio_postgres::Config = config.url.parse().map_err(|e| StoreError::Open {
        path: redacted_url(&config.url).into(),
        reason: format!("[postgres] url is not a PostgreSQL URL: {e}"),
    })?;
    if pg.get_password().is_none() {
        let from_env = std::env::var("PGPASSWORD").unwrap_or_default();
        let password = match config.password.is_empty() {
            false => config.password.as_str(),
            true => from_env.as_str(),
        };
        if !password.is_empty() {
            pg.password(password);
        }
    }
    let statement_ms = config.statement_timeout.seconds().max(1) * 1000;
    pg.connect_timeout(Duration::from_secs(config.connect_timeout.seconds().max(1)))
        .application_name("nova-actions")
        .options(format!(
            "-c statement_timeout={statement_ms} -c lock_timeout={statement_ms} -c synchronous_commit=on"
        ));
    Ok(pg)
}

/// SQLSTATE classes that say "try again later", not "this statement is wrong": connection
/// exceptions (08), operator intervention such as a shutdown or a cancelled statement (57),
/// too many connections, and serialization failures or deadlocks (40).
fn db_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let transient = code.starts_with("08")
                || code.starts_with("57")
                || code.starts_with("40")
                || code == "53300";
            let text = format!("{code}: {}", db.message());
            match transient {
                true => StoreError::Unavailable(text),
                false => StoreError::Database(text),
            }
        }
        // The connection broke, or could not be made in time: worth a retry. Anything else
        // (a value that does not convert) is a bug, not an outage.
        None if e.is_closed()
            || std::error::Error::source(&e)
                .is_some_and(<dyn std::error::Error>::is::<std::io::Error>)
            || e.to_string().contains("timeout") =>
        {
            StoreError::Unavailable(e.to_string())
        }
        None => StoreError::Database(e.to_string()),
    }
}

/// Opens connections on the store's own runtime, whichever thread asks the pool for one: their
/// sockets are then served there, by threads that never block.
struct OnRuntime(tokio::runtime::Handle);

impl deadpool_postgres::Connect for OnRuntime {
    fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> std::pin::Pin<
        Box<
            dyn Future<
                    Output = std::result::Result<
                        (tokio_postgres::Client, tokio::task::JoinHandle<()>),
                        tokio_postgres::Error,
                    >,
                > + Send
                + '_,
        >,
    > {
        let config = config.clone();
        let opened = self.0.spawn(async move {
            let (client, connection) = config.connect(NoTls).await?;
            let served = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    log::debug!("a PostgreSQL connection ended: {e}");
                }
            });
            Ok((client, served))
        });
        Box::pin(async move {
            match opened.await {
                Ok(result) => result,
                // Only while the runtime shuts down; an unconfigured connect fails at once
                // with an error of the type the pool expects.
                Err(_) => tokio_postgres::Config::new()
                    .connect(NoTls)
                    .await
                    .map(|_| unreachable!("a configuration without a host connects nowhere")),
            }
        })
    }
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => db_error(e),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// The advisory lock of a server id, taken by every write to it from any node (see `write.rs`
/// for which writes take it exclusive and which shared).
fn lock_key(id: &Uuid) -> i64 {
    let (hi, lo) = id.as_u64_pair();
    (hi ^ lo) as i64
}
