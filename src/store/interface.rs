//! The types the store's questions and writes take and give: what a caller (the API, the
//! CLI) needs to know of the store, with no sled or bincode type in them.

use super::keys::ActionKey;
use super::{Result, Store, StoreError};
use crate::model::{Action, Event};
use crate::timeutil::Micros;

/// Which page of a server's actions a list asks for, newest first.
#[derive(Debug, Clone)]
pub struct PageQuery<'a> {
    pub after: After<'a>,
    /// `updated_at >= since` (inclusive, Nova's `changes-since`).
    pub since: Option<Micros>,
    /// `updated_at <= before` (inclusive, Nova's `changes-before`).
    pub before: Option<Micros>,
    /// Most actions the page holds.
    pub limit: usize,
}

/// Where a page starts.
#[derive(Debug, Clone, Copy)]
pub enum After<'a> {
    /// At the newest action.
    Start,
    /// After the (newest) action with this request id: Nova's `marker`.
    Marker(&'a str),
    /// After where the previous page ended (a chunked read of a whole history).
    Cursor(Cursor),
}

/// A position in a server's history, as a page returns it. Opaque to callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub(super) ActionKey);

/// How a page ended.
#[derive(Debug, Clone, Copy)]
pub struct PageEnd {
    /// Actions on the page.
    pub count: usize,
    /// After the last of them, to read on from; None for an empty page.
    pub cursor: Option<Cursor>,
}

/// Which of a server's actions a scan wants, newest first.
#[derive(Debug, Clone, Default)]
pub struct ActionFilter {
    /// Only actions strictly older (in list order) than this key: the marker.
    pub older_than: Option<ActionKey>,
    /// `updated_at >= since` (inclusive, Nova's `changes-since`).
    pub since: Option<Micros>,
    /// `updated_at <= before` (inclusive, Nova's `changes-before`).
    pub before: Option<Micros>,
}

/// What a server upsert sets. The soft-delete state is not part of it: it has its own call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFields {
    pub project_id: String,
    pub user_id: Option<String>,
    pub host: Option<String>,
    pub created_at: Option<Micros>,
    pub name: Option<String>,
    pub status: Option<String>,
    /// Given by the caller (a mirror copying Nova's); otherwise the write's time when
    /// anything changed, as Nova's `instance.save()` bumps it.
    pub updated_at: Option<Micros>,
    /// When the write happens: the creation time of a new server given none, and its
    /// `updated_at` when none is given.
    pub written_at: Micros,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionStart {
    pub request_id: String,
    pub action: String,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub start_time: Micros,
    /// The caller named the time, so a retry must name the same one to count as a retry.
    pub time_given: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStart {
    pub request_id: String,
    pub event: String,
    pub host: Option<String>,
    pub details: Option<String>,
    pub start_time: Micros,
    pub time_given: bool,
    /// Attach to the server's newest action when the request id matches none (Nova does this
    /// when a compute service restarts mid-operation).
    pub fallback_to_last_action: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFinish {
    pub request_id: String,
    pub event: String,
    pub result: String,
    pub traceback: Option<String>,
    pub details: Option<String>,
    pub finish_time: Micros,
    pub time_given: bool,
    pub fallback_to_last_action: bool,
}

/// The outcome of a write: the stored record, and whether this call changed anything (a retry of
/// an already applied write changes nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written<T> {
    pub record: T,
    pub changed: bool,
}

/// A write applied, not yet known to be durable: acknowledge it only after [`Applied::wait`]
/// or [`Applied::durable`].
#[must_use = "a write is not durable until it has been waited for"]
pub struct Applied<T> {
    pub(super) written: Written<T>,
    /// The group commit that makes it durable; None when it already is (a committed
    /// database transaction).
    pub(super) ticket: Option<u64>,
    /// The project of the server written to, when the write read it anyway.
    pub(super) project: Option<String>,
}

impl<T> Applied<T> {
    pub(super) fn committed(written: Written<T>) -> Applied<T> {
        Applied {
            written,
            ticket: None,
            project: None,
        }
    }

    pub(super) fn seen_by(mut self, server: &crate::model::Server) -> Applied<T> {
        self.project = Some(server.project_id.clone());
        self
    }

    /// The project of the server written to, if the write learnt it (saves a lookup).
    pub fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    /// Blocks until the write is durable.
    pub fn wait(self, store: &Store) -> Result<Written<T>> {
        match store {
            Store::Embedded(s) => self.wait_on(s),
            Store::Postgres(_) => Ok(self.written),
        }
    }

    /// Resolves once the write is durable, without holding a thread.
    pub async fn durable(self, store: &Store) -> Result<Written<T>> {
        match store {
            Store::Embedded(s) => self.durable_on(s).await,
            Store::Postgres(_) => Ok(self.written),
        }
    }
}

pub(super) fn flush_error(why: String) -> StoreError {
    StoreError::Io(sled::Error::Io(std::io::Error::other(why)))
}

/// What an import of server lines stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub servers: u64,
    pub actions: u64,
    pub events: u64,
    /// Actions that were already stored exactly as given.
    pub unchanged: u64,
}

impl ImportCounts {
    pub fn add(&mut self, other: ImportCounts) {
        self.servers += other.servers;
        self.actions += other.actions;
        self.events += other.events;
        self.unchanged += other.unchanged;
    }
}

/// An action with its events (oldest first), as a write returns it.
pub type ActionWithEvents = (Action, Vec<Event>);
