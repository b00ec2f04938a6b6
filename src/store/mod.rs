//! The storage interface: `Store` answers the API's questions and applies Nova's writes, on one
//! of two backends with the same behaviour: the embedded sled store (the default: one process,
//! no database server) or PostgreSQL (several nodes over one database). Nothing here knows
//! about HTTP, and nothing outside knows which backend answers.
//!
//! The methods block: call them from a blocking thread or the CLI. An async worker uses the
//! `fetch_*` methods (in place on the embedded store, whose reads take microseconds and never
//! wait on a network; awaited on PostgreSQL) and [`Store::run`] for anything else (in place,
//! or on a blocking thread).

mod codec;
pub mod embedded;
mod error;
mod interface;
pub mod keys;
pub mod postgres;
pub mod semantics;

use std::sync::Arc;

use uuid::Uuid;

pub(crate) use codec::{decode, decode_server, encode, encode_server};
pub use embedded::{DEFAULT_CACHE_BYTES, SledStore};
pub use error::{Result, StoreError};
pub use interface::{
    ActionFilter, ActionStart, ActionWithEvents, After, Applied, Cursor, EventFinish, EventStart,
    ImportCounts, PageEnd, PageQuery, ServerFields, Written,
};
use keys::ActionKey;
pub use keys::ServerPosition;
pub use postgres::PgStore;

use crate::config::{Backend, Config};
use crate::metrics::Histogram;
use crate::model::{Action, ActionView, Event, Server, ServerHistory, ServerView};
use crate::timeutil::Micros;

pub enum Store {
    Embedded(SledStore),
    Postgres(Box<PgStore>),
}

/// Calls the same method on whichever backend holds the store.
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Embedded($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

impl Store {
    /// The embedded store in `dir`, with the default cache.
    pub fn open(dir: &std::path::Path) -> Result<Store> {
        SledStore::open(dir).map(Store::Embedded)
    }

    /// The store `config` names. A database that cannot be reached yet is not an error here:
    /// the PostgreSQL backend keeps trying in the background and answers `Unavailable` until
    /// it has connected and brought the schema up to date.
    pub fn open_configured(config: &Config) -> Result<Store> {
        match config.storage.backend {
            Backend::Sled => SledStore::open_with(
                &config.storage.data_dir,
                config.storage.cache_mb.saturating_mul(1024 * 1024),
            )
            .map(Store::Embedded),
            Backend::Postgres => {
                PgStore::connect(&config.postgres).map(|s| Store::Postgres(Box::new(s)))
            }
        }
    }

    /// Closes the store so that the next start is quick. sled 0.34 writes its recovery snapshot
    /// only while opening, so a start replays every log segment written since the previous
    /// start: after a bulk write that is the whole store (1 s at 1,000,000 actions, 9.6 s at
    /// 10,000,000). Opening the embedded store once more on the way out pays that here instead.
    pub fn close(self) -> Result<()> {
        self.durable()?;
        match self {
            Store::Embedded(s) => s.close(),
            Store::Postgres(_) => Ok(()),
        }
    }

    /// For a command that needs the store now: waits up to `limit` for a database that is
    /// still being connected to (the embedded store is ready once open).
    pub fn wait_until_ready(&self, limit: std::time::Duration) -> Result<()> {
        match self {
            Store::Embedded(_) => Ok(()),
            Store::Postgres(s) => s.wait_until_ready(limit),
        }
    }

    /// The schema version of a database store and the newest this binary knows.
    pub fn schema_version(&self) -> Option<Result<(i32, i32)>> {
        match self {
            Store::Embedded(_) => None,
            Store::Postgres(s) => Some(s.schema_version().map(|v| (v, postgres::SCHEMA_VERSION))),
        }
    }

    /// Where the store is, for log lines (never a password).
    pub fn describe(&self) -> String {
        match self {
            Store::Embedded(s) => s.path().display().to_string(),
            Store::Postgres(s) => s.describe(),
        }
    }

    /// Whether a read may run on an async worker (see the module comment).
    pub fn answers_in_place(&self) -> bool {
        matches!(self, Store::Embedded(_))
    }

    /// Runs store work from an async worker without blocking it on a network round trip.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.answers_in_place() {
            return work(self);
        }
        self.run_long(work).await
    }

    /// Runs store work that may read far (a filtered scan) on the blocking pool on either
    /// backend, so that an async worker's other requests do not wait for it.
    pub async fn run_long<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = Arc::clone(self);
        match actix_web::rt::task::spawn_blocking(move || work(&store)).await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Unavailable(format!("a store task failed: {e}"))),
        }
    }

    pub async fn fetch_server(self: &Arc<Self>, id: &Uuid) -> Result<Option<Server>> {
        match &**self {
            Store::Embedded(s) => s.server(id),
            Store::Postgres(s) => s.fetch_server(id).await,
        }
    }

    /// A list page for a caller that may see the server: `check` judges the server record (None
    /// when there is none) before any of its history is read or handed to `visit`. On
    /// PostgreSQL a plain page comes in the same round trip as the server.
    pub async fn fetch_checked_page<E: From<StoreError>>(
        self: &Arc<Self>,
        server: &Uuid,
        query: &PageQuery<'_>,
        check: impl FnOnce(Option<&Server>) -> std::result::Result<(), E>,
        visit: impl FnMut(&ActionView<'_>),
    ) -> std::result::Result<PageEnd, E> {
        match &**self {
            Store::Embedded(s) => {
                check(s.server(server)?.as_ref())?;
                Ok(s.list_page(server, query, visit)?)
            }
            Store::Postgres(s) => s.fetch_checked_page(server, query, check, visit).await,
        }
    }

    pub async fn fetch_action(
        self: &Arc<Self>,
        server: &Uuid,
        request_id: &str,
        with_events: bool,
    ) -> Result<Option<(Action, Vec<Event>)>> {
        match &**self {
            Store::Embedded(s) => s.show(server, request_id, with_events),
            Store::Postgres(s) => s.fetch_action(server, request_id, with_events).await,
        }
    }

    // ----- reads -----

    /// Why writes can no longer be made durable, once a flush has failed (embedded only).
    pub fn broken(&self) -> Option<String> {
        match self {
            Store::Embedded(s) => s.broken(),
            Store::Postgres(_) => None,
        }
    }

    pub fn server(&self, id: &Uuid) -> Result<Option<Server>> {
        each!(self, s => s.server(id))
    }

    /// A page of a server's actions, newest first, each handed to `visit`. A read that raced
    /// a purge of the server fails with `ServerNotFound`, as if it came after the purge.
    pub fn list_page(
        &self,
        server: &Uuid,
        query: &PageQuery<'_>,
        visit: impl FnMut(&ActionView<'_>),
    ) -> Result<PageEnd> {
        each!(self, s => s.list_page(server, query, visit))
    }

    /// The newest action of `server` with this request id, with its events newest first when
    /// `with_events`; None when there is none.
    pub fn show(
        &self,
        server: &Uuid,
        request_id: &str,
        with_events: bool,
    ) -> Result<Option<(Action, Vec<Event>)>> {
        each!(self, s => s.show(server, request_id, with_events))
    }

    /// Up to `max` of a server's actions, oldest first, after `after` in that order (from the
    /// oldest when None), each with its events oldest first: exports walk a history in chunks.
    pub fn history_chunk(
        &self,
        server: &Uuid,
        after: Option<&ActionKey>,
        max: usize,
    ) -> Result<Vec<(ActionKey, ActionWithEvents)>> {
        each!(self, s => s.history_chunk(server, after, max))
    }

    /// Servers in listing order (Nova's `created_at desc, id desc`) after `after`, of `project`
    /// or of all projects, that `admit` accepts, until `limit` are found or the listing ends.
    /// Memory holds the servers found, never the listing.
    pub fn find_servers(
        &self,
        project: Option<&str>,
        after: Option<&ServerPosition>,
        limit: usize,
        admit: &dyn Fn(&ServerView<'_>) -> bool,
    ) -> Result<Vec<(Uuid, Server)>> {
        each!(self, s => s.find_servers(project, after, limit, admit))
    }

    /// A small named value kept with the data, such as the mirror's watermark.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        each!(self, s => s.meta(key))
    }

    /// Sets a named value; durable on return.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        each!(self, s => s.set_meta(key, value))
    }

    /// Where `id` sorts in listings (a marker), None when there is no such server.
    pub fn server_position(&self, id: &Uuid) -> Result<Option<ServerPosition>> {
        each!(self, s => s.server_position(id))
    }

    /// The server after `after` in id order (the first when None).
    pub fn next_server_id(&self, after: Option<&Uuid>) -> Result<Option<(Uuid, Server)>> {
        each!(self, s => s.next_server_id(after))
    }

    /// A server's whole history, oldest first (for tests).
    pub fn history(&self, server: &Uuid) -> Result<Vec<ActionWithEvents>> {
        let chunk = self.history_chunk(server, None, usize::MAX)?;
        Ok(chunk.into_iter().map(|(_, action)| action).collect())
    }

    // ----- writes -----

    pub fn apply_upsert_server(&self, id: &Uuid, fields: ServerFields) -> Result<Applied<Server>> {
        each!(self, s => s.apply_upsert_server(id, fields))
    }

    pub fn apply_soft_delete_server(&self, id: &Uuid, at: Micros) -> Result<Applied<Server>> {
        each!(self, s => s.apply_soft_delete_server(id, at))
    }

    pub fn apply_start_action(
        &self,
        server: &Uuid,
        start: ActionStart,
    ) -> Result<Applied<ActionWithEvents>> {
        each!(self, s => s.apply_start_action(server, start))
    }

    pub fn apply_finish_action(
        &self,
        server: &Uuid,
        request_id: &str,
        finish_time: Micros,
        time_given: bool,
    ) -> Result<Applied<ActionWithEvents>> {
        each!(self, s => s.apply_finish_action(server, request_id, finish_time, time_given))
    }

    pub fn apply_start_event(
        &self,
        server: &Uuid,
        start: EventStart,
    ) -> Result<Applied<ActionWithEvents>> {
        each!(self, s => s.apply_start_event(server, start))
    }

    pub fn apply_finish_event(
        &self,
        server: &Uuid,
        finish: EventFinish,
    ) -> Result<Applied<ActionWithEvents>> {
        each!(self, s => s.apply_finish_event(server, finish))
    }

    /// Stores one server line (idempotent). Not durable on return: call [`Store::durable`]
    /// when a group of lines is done.
    pub fn import_server(&self, history: &ServerHistory) -> Result<ImportCounts> {
        each!(self, s => s.import_server(history))
    }

    /// Removes a server and its whole history for good. Returns how many actions went, or None
    /// when there was nothing of that server to remove.
    pub fn purge_server(&self, id: &Uuid) -> Result<Option<u64>> {
        each!(self, s => s.purge_server(id))
    }

    /// Retention: purges every server soft-deleted before `cutoff`. Returns (servers, actions).
    pub fn purge_deleted_before(&self, cutoff: Micros) -> Result<(u64, u64)> {
        each!(self, s => s.purge_deleted_before(cutoff))
    }

    /// Finishes every purge a crash interrupted. Returns how many it finished.
    pub fn resume_purges(&self) -> Result<u64> {
        match self {
            Store::Embedded(s) => s.resume_purges(),
            // A purge there is one transaction: nothing is ever left half done.
            Store::Postgres(_) => Ok(0),
        }
    }

    pub fn purges_pending(&self) -> Result<u64> {
        match self {
            Store::Embedded(s) => s.purges_pending(),
            Store::Postgres(_) => Ok(0),
        }
    }

    /// Makes everything written so far durable.
    pub fn durable(&self) -> Result<()> {
        match self {
            Store::Embedded(s) => s.durable(),
            // Every write there is committed (synchronous_commit on) before it returns.
            Store::Postgres(_) => Ok(()),
        }
    }

    // ----- operations -----

    /// Fails when the store cannot answer (`/healthcheck`).
    pub fn check(&self) -> Result<()> {
        each!(self, s => s.check())
    }

    pub fn size_on_disk(&self) -> Result<u64> {
        each!(self, s => s.size_on_disk())
    }

    pub fn flush_times(&self) -> Histogram {
        match self {
            Store::Embedded(s) => s.flush_times(),
            Store::Postgres(_) => Histogram::default(),
        }
    }
}
