//! The embedded store: sled trees whose keys make every API question an ordered range scan.
//! Nothing here knows about HTTP.

mod commit;
mod import;
pub mod keys;
mod locks;
#[cfg(test)]
mod model_test;
mod purge;

use std::fmt;
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::{IVec, Transactional, Tree};
use uuid::Uuid;

use crate::input::excerpt;
use crate::model::{Action, ActionView, Event, Server};
use crate::timeutil::Micros;
use commit::GroupCommit;
pub use import::ImportCounts;
use keys::{
    ActionKey, action_key, first_started_at_or_before, is_newer, last_started_at_or_after,
    request_key,
};
use locks::ServerLocks;

/// sled's own default is 1 GB; a small cache keeps an edge host's footprint small and the hot
/// pages (the newest actions of busy servers) still fit.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Leading byte of every record: the layout can evolve with a migration instead of a rewrite.
const RECORD_FORMAT: u8 = 1;
/// The key layout of the trees, stored under `format`: newest-first action keys, each action
/// record followed by its event list (since 4), purges under way marked by tombstones in the
/// `purging` tree (since 5). Layouts 3 (event lists in a tree of their own) and 4 are migrated
/// on open.
const LAYOUT: u8 = 5;

#[derive(Debug)]
pub enum StoreError {
    ServerNotFound(Uuid),
    ActionNotFound {
        server: Uuid,
        request_id: String,
    },
    EventNotFound {
        event: String,
        request_id: String,
    },
    Corrupt(String),
    Open {
        path: PathBuf,
        reason: String,
    },
    Io(sled::Error),
    /// A failed flush covered writes to this server: what memory holds may not be on disk.
    Unconfirmed(Uuid),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Operators' words: what a client reads is the API layer's choice (api::fault).
            StoreError::ServerNotFound(id) => write!(f, "no server {id}"),
            StoreError::ActionNotFound { server, request_id } => write!(
                f,
                "no action with request id {} on server {server}",
                excerpt(request_id)
            ),
            StoreError::EventNotFound { event, request_id } => write!(
                f,
                "no event {} in the action of request id {}",
                excerpt(event),
                excerpt(request_id)
            ),
            StoreError::Corrupt(what) => write!(f, "corrupt record: {what}"),
            StoreError::Open { path, reason } => {
                write!(f, "cannot open the store at {}: {reason}", path.display())
            }
            StoreError::Io(e) => write!(f, "storage error: {e}"),
            StoreError::Unconfirmed(id) => write!(
                f,
                "server {id} has writes that a failed flush did not confirm"
            ),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e)
    }
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Io(e),
        }
    }
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    let mut out = vec![RECORD_FORMAT];
    bincode::serde::encode_into_std_write(record, &mut out, bincode::config::standard())
        .expect("writing into a Vec cannot fail");
    out
}

/// What follows a record's format byte, if this version reads that format.
fn record_body(bytes: &[u8]) -> Result<&[u8]> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT, rest)) => Ok(rest),
        Some((version, _)) => Err(StoreError::Corrupt(format!(
            "unknown record format {version}"
        ))),
        None => Err(StoreError::Corrupt("empty record".into())),
    }
}

/// A value at the start of `bytes`, and how many bytes it took.
fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize)> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    Ok(decode_prefix(record_body(bytes)?)?.0)
}

/// An action record: the action, then its events oldest first. A list reads the first part
/// only; a show or a write reads both from the one record.
pub(crate) fn encode_action(action: &Action, events: &[Event]) -> Vec<u8> {
    let mut out = encode(action);
    bincode::serde::encode_into_std_write(events, &mut out, bincode::config::standard())
        .expect("writing into a Vec cannot fail");
    out
}

/// The action of an action record, and the encoded event list after it.
fn split_action(bytes: &[u8]) -> Result<(Action, &[u8])> {
    let body = record_body(bytes)?;
    let (action, used) = decode_prefix(body)?;
    Ok((action, &body[used..]))
}

/// An action without events may end right after the action (one migrated from layout 3).
fn decode_events(encoded: &[u8]) -> Result<Vec<Event>> {
    if encoded.is_empty() {
        return Ok(Vec::new());
    }
    Ok(decode_prefix(encoded)?.0)
}

pub(crate) fn decode_action_with_events(bytes: &[u8]) -> Result<ActionWithEvents> {
    let (action, events) = split_action(bytes)?;
    Ok((action, decode_events(events)?))
}

fn decode_view<'a>(bytes: &'a [u8]) -> Result<ActionView<'a>> {
    bincode::serde::borrow_decode_from_slice(record_body(bytes)?, bincode::config::standard())
        .map(|(view, _)| view)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn tx_decode<T: DeserializeOwned>(bytes: &[u8]) -> TxResult<T> {
    decode(bytes).map_err(ConflictableTransactionError::Abort)
}

/// Which of a server's actions a list wants, newest first.
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

/// A write applied in memory, not yet known to be on disk: acknowledge it only after
/// [`Applied::wait`] or [`Applied::durable`].
#[must_use = "a write is not durable until it has been waited for"]
pub struct Applied<T> {
    written: Written<T>,
    ticket: u64,
}

impl<T> Applied<T> {
    /// Blocks until the write is on disk.
    pub fn wait(self, store: &Store) -> Result<Written<T>> {
        store.commit.wait(self.ticket).map_err(flush_error)?;
        Ok(self.written)
    }

    /// Resolves once the write is on disk, without holding a thread.
    pub async fn durable(self, store: &Store) -> Result<Written<T>> {
        store
            .commit
            .wait_async(self.ticket)
            .await
            .map_err(flush_error)?;
        Ok(self.written)
    }
}

fn flush_error(why: String) -> StoreError {
    StoreError::Io(sled::Error::Io(std::io::Error::other(why)))
}

/// An action with its events (oldest first), as a write returns it.
pub type ActionWithEvents = (Action, Vec<Event>);

/// How far an action's `updated_at` strays from its `start_time` on one server. It bounds the
/// part of the history a `changes-since`/`changes-before` scan must visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Lag {
    max: i64,
    min: i64,
}

impl Lag {
    fn decode(bytes: Option<IVec>) -> Lag {
        match bytes {
            Some(b) if b.len() == 16 => Lag {
                max: i64::from_be_bytes(b[..8].try_into().unwrap()),
                min: i64::from_be_bytes(b[8..].try_into().unwrap()),
            },
            _ => Lag::default(),
        }
    }

    fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.max.to_be_bytes());
        out[8..].copy_from_slice(&self.min.to_be_bytes());
        out
    }
}

pub struct Store {
    db: sled::Db,
    servers: Tree,
    actions: Tree,
    by_request: Tree,
    lag: Tree,
    /// Ids whose purge has begun and not yet finished (see `purge.rs`).
    purging: Tree,
    data_file: File,
    commit: Arc<GroupCommit>,
    locks: ServerLocks,
}

impl Store {
    /// Opens (or creates) the store in `dir` with the default page cache.
    pub fn open(dir: &Path) -> Result<Store> {
        Store::open_with(dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens the store with a page cache of `cache_bytes`: the main lever on resident memory.
    pub fn open_with(dir: &Path, cache_bytes: u64) -> Result<Store> {
        let open_err = |reason: String| StoreError::Open {
            path: dir.to_path_buf(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        remove_half_written_snapshots(dir).map_err(|e| open_err(e.to_string()))?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            // Every write is flushed by the group commit; a timer flushing on top only competes.
            .flush_every_ms(None)
            .open()
            .map_err(|e| {
                match e {
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => open_err(
                "it is in use by another process (a running service?): stop it first, or use \
                 the service's /ingest/v1/import and /ingest/v1/export endpoints"
                    .into(),
            ),
            other => open_err(format!("{other} (the store is left untouched)")),
        }
            })?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| open_err(e.to_string()));
        let store = Store {
            servers: tree("servers")?,
            actions: tree("actions")?,
            by_request: tree("action_by_request")?,
            lag: tree("lag")?,
            purging: tree("purging")?,
            locks: ServerLocks::new(),
            data_file: File::open(dir.join("db")).map_err(|e| open_err(e.to_string()))?,
            commit: GroupCommit::start(
                db.clone(),
                File::open(dir.join("db")).map_err(|e| open_err(e.to_string()))?,
            ),
            db,
        };
        store.check_format().map_err(|e| open_err(e.to_string()))?;
        Ok(store)
    }

    fn check_format(&self) -> Result<()> {
        loop {
            match self.db.get("format")? {
                None => {
                    self.db.insert("format", &[LAYOUT])?;
                    return self.durable();
                }
                Some(v) if v.as_ref() == [LAYOUT] => return Ok(()),
                Some(v) if v.as_ref() == [4] => self.migrate_from_layout_4()?,
                Some(v) if v.as_ref() == [3] => self.migrate_from_layout_3()?,
                Some(v) => {
                    return Err(StoreError::Corrupt(format!(
                        "store layout {v:?} is not one this version understands ({LAYOUT}): export it with the version that wrote it and import it here"
                    )));
                }
            }
        }
    }

    /// Layout 4 had no tombstones: remains of interrupted purges are buried now, and finished
    /// by [`Store::resume_purges`] like any purge a crash interrupted.
    fn migrate_from_layout_4(&self) -> Result<()> {
        let buried = self.bury_orphaned_histories()?;
        if buried > 0 {
            log::warn!(
                "{buried} servers had history left by interrupted purges: it is removed in the background"
            );
        }
        self.db.insert("format", &[5])?;
        self.durable()
    }

    /// Layout 3 kept each action's event list in an `events` tree under the action's key: move
    /// every list to the end of its action record. Each batch moves and removes in one
    /// transaction, so an interrupted migration resumes where it stopped.
    fn migrate_from_layout_3(&self) -> Result<()> {
        let events = self.db.open_tree("events")?;
        log::info!("migrating the store to layout 4 (event lists inside action records)");
        let mut moved = 0u64;
        loop {
            let batch: Vec<(IVec, IVec)> = events
                .iter()
                .take(1000)
                .collect::<std::result::Result<_, _>>()?;
            if batch.is_empty() {
                break;
            }
            (&self.actions, &events).transaction(|(actions, events)| {
                for (key, list) in &batch {
                    // A layout-3 list is one record: format byte, then the bincode list.
                    let list =
                        decode::<Vec<Event>>(list).map_err(ConflictableTransactionError::Abort)?;
                    if let Some(action) = actions.get(key)? {
                        let (action, _) =
                            split_action(&action).map_err(ConflictableTransactionError::Abort)?;
                        actions.insert(key, encode_action(&action, &list))?;
                    }
                    events.remove(key)?;
                }
                Ok(())
            })?;
            moved += batch.len() as u64;
        }
        self.db.drop_tree("events")?;
        self.db.insert("format", &[4])?;
        self.durable()?;
        log::info!("migration done: {moved} event lists moved");
        Ok(())
    }

    /// Blocks until every write applied so far is on disk.
    pub fn durable(&self) -> Result<()> {
        self.commit.sync().map_err(flush_error)
    }

    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }

    /// How long group-commit flushes took so far.
    pub fn flush_times(&self) -> crate::metrics::Histogram {
        self.commit.flush_times()
    }

    /// Whether the store answers reads and its directory is still there (for health checks).
    pub fn check(&self) -> Result<()> {
        self.writable()?;
        self.db.get("format")?;
        self.data_file
            .metadata()
            .map_err(|e| StoreError::Io(e.into()))?;
        Ok(())
    }

    // ----- reads -----

    /// Why writes can no longer be made durable, once a flush has failed.
    pub fn broken(&self) -> Option<String> {
        self.commit.broken()
    }

    /// After a failed flush nothing more is written: the disk's state is unknown (a later fsync
    /// can succeed after the kernel dropped the pages an earlier one failed to write).
    pub(super) fn writable(&self) -> Result<()> {
        match self.commit.broken() {
            Some(why) => Err(flush_error(format!("an earlier flush failed: {why}"))),
            None => Ok(()),
        }
    }

    /// Fails for a server a failed flush left with unacknowledged writes in memory.
    fn confirmed(&self, id: &Uuid) -> Result<()> {
        match self.commit.is_unconfirmed(id) {
            true => Err(StoreError::Unconfirmed(*id)),
            false => Ok(()),
        }
    }

    pub fn server(&self, id: &Uuid) -> Result<Option<Server>> {
        self.confirmed(id)?;
        self.servers
            .get(id.as_bytes())?
            .map(|b| decode(&b))
            .transpose()
    }

    /// The newest action of `server` with this request id.
    pub fn find_action(
        &self,
        server: &Uuid,
        request_id: &str,
    ) -> Result<Option<(ActionKey, Action)>> {
        let Some(key) = self.by_request.get(request_key(server, request_id))? else {
            return Ok(None);
        };
        let key =
            keys::as_action_key(&key).ok_or_else(|| StoreError::Corrupt("index entry".into()))?;
        match self.actions.get(key)? {
            Some(bytes) => Ok(Some((key, decode(&bytes)?))),
            None => Err(StoreError::Corrupt(format!(
                "index names a missing action of {server}"
            ))),
        }
    }

    /// An action's events, newest first.
    pub fn events_newest_first(&self, action: &ActionKey) -> Result<Vec<Event>> {
        let mut events = self.events_of(action)?;
        events.reverse();
        Ok(events)
    }

    /// The stored records a filter can match, newest first: the bounded range of the scan.
    fn filtered_range(&self, server: &Uuid, filter: &ActionFilter) -> Result<Option<sled::Iter>> {
        let lag = if filter.since.is_some() || filter.before.is_some() {
            Lag::decode(self.lag.get(server.as_bytes())?)
        } else {
            Lag::default()
        };
        // Newest first is key order. Nothing started after `before - min lag` can have been
        // updated by `before`; nothing started before `since - max lag` since `since`.
        let first = match filter.before {
            Some(before) => first_started_at_or_before(server, before.saturating_sub(lag.min)),
            None => first_started_at_or_before(server, i64::MAX),
        };
        let last = match filter.since {
            Some(since) => last_started_at_or_after(server, since.saturating_sub(lag.max)),
            None => last_started_at_or_after(server, i64::MIN),
        };
        let start = match filter.older_than {
            Some(marker) if marker >= first => Bound::Excluded(marker),
            _ => Bound::Included(first),
        };
        let empty = match start {
            Bound::Excluded(s) => s >= last,
            _ => first > last,
        };
        Ok((!empty).then(|| {
            self.actions
                .range::<ActionKey, _>((start, Bound::Included(last)))
        }))
    }

    /// A server's actions, newest first, restricted by `filter`. Lazy: a page reads only what it
    /// returns plus what the time bounds cannot rule out.
    pub fn actions_newest_first(
        &self,
        server: &Uuid,
        filter: &ActionFilter,
    ) -> Result<impl Iterator<Item = Result<(ActionKey, Action)>> + '_> {
        let (since, before) = (filter.since, filter.before);
        let range = self.filtered_range(server, filter)?;
        Ok(range.into_iter().flatten().filter_map(move |item| {
            let (key, bytes) = match item {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            let action: Action = match decode(&bytes) {
                Ok(a) => a,
                Err(e) => return Some(Err(e)),
            };
            if !updated_within(action.updated_at, since, before) {
                return None;
            }
            let key = keys::as_action_key(&key)?;
            Some(Ok((key, action)))
        }))
    }

    /// Hands up to `max` of a server's actions matching `filter`, newest first, to `visit`,
    /// read in place from the store's pages. Returns how many it handed over.
    pub fn visit_newest_first(
        &self,
        server: &Uuid,
        filter: &ActionFilter,
        max: usize,
        mut visit: impl FnMut(&ActionKey, &ActionView<'_>),
    ) -> Result<usize> {
        let mut count = 0;
        let Some(range) = self.filtered_range(server, filter)? else {
            return Ok(0);
        };
        for item in range {
            if count >= max {
                break;
            }
            let (key, bytes) = item?;
            let view: ActionView<'_> = decode_view(&bytes)?;
            if !updated_within(view.updated_at, filter.since, filter.before) {
                continue;
            }
            let key = keys::as_action_key(&key)
                .ok_or_else(|| StoreError::Corrupt("action key".into()))?;
            visit(&key, &view);
            count += 1;
        }
        Ok(count)
    }

    /// Every server id in key order.
    pub fn server_ids(&self) -> impl Iterator<Item = Result<(Uuid, Server)>> + '_ {
        self.servers.iter().map(|item| {
            let (k, v) = item?;
            let id = Uuid::from_slice(&k).map_err(|_| StoreError::Corrupt("server key".into()))?;
            Ok((id, decode(&v)?))
        })
    }

    /// Up to `max` of a server's actions, oldest first, that come after `after` in that order
    /// (from the oldest when None), each with its events oldest first: exports walk a history
    /// of any length in chunks of bounded size.
    pub fn history_chunk(
        &self,
        server: &Uuid,
        after: Option<&ActionKey>,
        max: usize,
    ) -> Result<Vec<(ActionKey, ActionWithEvents)>> {
        self.confirmed(server)?;
        let newest = first_started_at_or_before(server, i64::MAX);
        let upper = match after {
            Some(key) => Bound::Excluded(*key),
            None => Bound::Included(last_started_at_or_after(server, i64::MIN)),
        };
        self.actions
            .range::<ActionKey, _>((Bound::Included(newest), upper))
            .rev()
            .take(max)
            .map(|item| {
                let (key, bytes) = item?;
                let key = keys::as_action_key(&key)
                    .ok_or_else(|| StoreError::Corrupt("action key".into()))?;
                Ok((key, decode_action_with_events(&bytes)?))
            })
            .collect()
    }

    /// The server after `after` in id order (the first when None).
    pub fn next_server_id(&self, after: Option<&Uuid>) -> Result<Option<(Uuid, Server)>> {
        let next = match after {
            Some(id) => self
                .servers
                .range::<&[u8], _>((Bound::Excluded(&id.as_bytes()[..]), Bound::Unbounded))
                .next(),
            None => self.servers.iter().next(),
        };
        let Some(item) = next else { return Ok(None) };
        let (key, bytes) = item?;
        let uuid = Uuid::from_slice(&key).map_err(|_| StoreError::Corrupt("server key".into()))?;
        Ok(Some((uuid, decode(&bytes)?)))
    }

    /// A server's whole history, oldest first, each action with its events oldest first.
    pub fn history(&self, server: &Uuid) -> Result<Vec<ActionWithEvents>> {
        let chunk = self.history_chunk(server, None, usize::MAX)?;
        Ok(chunk.into_iter().map(|(_, action)| action).collect())
    }

    // ----- writes: each is one transaction, acknowledged only once durable -----

    pub fn apply_upsert_server(&self, id: &Uuid, fields: ServerFields) -> Result<Applied<Server>> {
        self.writable()?;
        let _one_writer = self.locks.lock(id);
        self.finish_purge_of(id)?;
        let written = self.servers.transaction(|servers| {
            let old: Option<Server> = servers
                .get(id.as_bytes())?
                .map(|b| tx_decode(&b))
                .transpose()?;
            let server = Server {
                project_id: fields.project_id.clone(),
                user_id: fields.user_id.clone(),
                host: fields.host.clone(),
                created_at: fields
                    .created_at
                    .or(old.as_ref().and_then(|o| o.created_at)),
                deleted: old.as_ref().is_some_and(|o| o.deleted),
                deleted_at: old.as_ref().and_then(|o| o.deleted_at),
            };
            let changed = old.as_ref() != Some(&server);
            if changed {
                servers.insert(id.as_bytes(), encode(&server))?;
            }
            Ok(Written {
                record: server,
                changed,
            })
        })?;
        Ok(self.applied(id, written))
    }

    pub fn apply_soft_delete_server(&self, id: &Uuid, at: Micros) -> Result<Applied<Server>> {
        self.writable()?;
        let _one_writer = self.locks.lock(id);
        let written = self.servers.transaction(|servers| {
            let Some(bytes) = servers.get(id.as_bytes())? else {
                return abort(StoreError::ServerNotFound(*id));
            };
            let mut server: Server = tx_decode(&bytes)?;
            if server.deleted {
                return Ok(Written {
                    record: server,
                    changed: false,
                });
            }
            server.deleted = true;
            server.deleted_at = Some(at);
            servers.insert(id.as_bytes(), encode(&server))?;
            Ok(Written {
                record: server,
                changed: true,
            })
        })?;
        Ok(self.applied(id, written))
    }

    /// Retention: purges every server soft-deleted before `cutoff`. Returns (servers, actions).
    pub fn purge_deleted_before(&self, cutoff: Micros) -> Result<(u64, u64)> {
        self.resume_purges()?;
        let doomed: Vec<Uuid> = self
            .server_ids()
            .filter_map(|item| match item {
                Ok((id, s)) if s.deleted && s.deleted_at.is_some_and(|at| at < cutoff) => {
                    Some(Ok(id))
                }
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_>>()?;
        let mut actions = 0;
        for id in &doomed {
            actions += self.purge_server(id)?.unwrap_or(0);
        }
        Ok((doomed.len() as u64, actions))
    }

    pub fn apply_start_action(
        &self,
        server: &Uuid,
        start: ActionStart,
    ) -> Result<Applied<ActionWithEvents>> {
        self.writable()?;
        let _one_writer = self.locks.lock(server);
        let seq = self.db.generate_id()?;
        let key = action_key(server, start.start_time, seq);
        let rkey = request_key(server, &start.request_id);
        let written = (&self.servers, &self.actions, &self.by_request, &self.lag).transaction(
            |(servers, actions, by_request, lag)| {
                if servers.get(server.as_bytes())?.is_none() {
                    return abort(StoreError::ServerNotFound(*server));
                }
                let newest = by_request.get(&rkey)?;
                if let Some(existing_key) = &newest {
                    let existing = tx_read(actions, existing_key, decode_action_with_events)?;
                    if is_retry_of(&existing.0, &start) {
                        return Ok(Written {
                            record: existing,
                            changed: false,
                        });
                    }
                }
                let action = Action {
                    request_id: start.request_id.clone(),
                    action: start.action.clone(),
                    user_id: start.user_id.clone(),
                    project_id: start.project_id.clone(),
                    start_time: start.start_time,
                    finish_time: None,
                    updated_at: Some(start.start_time),
                    message: None,
                    created_at: None,
                };
                actions.insert(&key, encode_action(&action, &[]))?;
                if newest.as_ref().is_none_or(|n| is_newer(&key, n)) {
                    by_request.insert(rkey.as_slice(), &key)?;
                }
                widen_lag(lag, server, 0)?;
                Ok(Written {
                    record: (action, Vec::new()),
                    changed: true,
                })
            },
        )?;
        Ok(self.applied(server, written))
    }

    pub fn apply_finish_action(
        &self,
        server: &Uuid,
        request_id: &str,
        finish_time: Micros,
        time_given: bool,
    ) -> Result<Applied<ActionWithEvents>> {
        self.writable()?;
        let _one_writer = self.locks.lock(server);
        let (key, _) = self.action_key_for(server, request_id, false)?;
        let written = (&self.actions, &self.lag).transaction(|(actions, lag)| {
            let (mut action, events) = tx_read(actions, &key, decode_action_with_events)?;
            if action.finish_time.is_some()
                && (!time_given || action.finish_time == Some(finish_time))
            {
                return Ok(Written {
                    record: (action, events),
                    changed: false,
                });
            }
            action.finish_time = Some(finish_time);
            action.updated_at = Some(finish_time);
            actions.insert(&key, encode_action(&action, &events))?;
            widen_lag(lag, server, finish_time.saturating_sub(action.start_time))?;
            Ok(Written {
                record: (action, events),
                changed: true,
            })
        })?;
        Ok(self.applied(server, written))
    }

    pub fn apply_start_event(
        &self,
        server: &Uuid,
        start: EventStart,
    ) -> Result<Applied<ActionWithEvents>> {
        self.writable()?;
        let _one_writer = self.locks.lock(server);
        // The fallback attaches to the newest action without touching its updated_at.
        let (key, bump) =
            self.action_key_for(server, &start.request_id, start.fallback_to_last_action)?;
        let event = Event {
            event: start.event.clone(),
            start_time: Some(start.start_time),
            finish_time: None,
            result: None,
            traceback: None,
            host: start.host.clone(),
            details: start.details.clone(),
            created_at: None,
        };
        let at = bump.then_some(start.start_time);
        self.write_events(server, key, at, |_, list| {
            let retry = list.iter().any(|e| {
                e.event == start.event
                    && e.host == start.host
                    && if start.time_given {
                        e.start_time == Some(start.start_time)
                    } else {
                        e.finish_time.is_none()
                    }
            });
            if !retry {
                list.push(event.clone());
            }
            Ok(!retry)
        })
    }

    pub fn apply_finish_event(
        &self,
        server: &Uuid,
        finish: EventFinish,
    ) -> Result<Applied<ActionWithEvents>> {
        self.writable()?;
        let _one_writer = self.locks.lock(server);
        let (key, bump) =
            self.action_key_for(server, &finish.request_id, finish.fallback_to_last_action)?;
        let at = bump.then_some(finish.finish_time);
        self.write_events(server, key, at, |action, list| {
            // Nova finishes the oldest event of that name.
            let Some(event) = list.iter_mut().find(|e| e.event == finish.event) else {
                return Err(StoreError::EventNotFound {
                    event: finish.event.clone(),
                    request_id: finish.request_id.clone(),
                });
            };
            let same = event.result.as_deref() == Some(finish.result.as_str())
                && event.traceback == finish.traceback
                && event.details == finish.details
                && (!finish.time_given || event.finish_time == Some(finish.finish_time));
            if same && event.finish_time.is_some() {
                return Ok(false);
            }
            event.finish_time = Some(finish.finish_time);
            event.result = Some(finish.result.clone());
            event.traceback = finish.traceback.clone();
            event.details = finish.details.clone();
            if finish.result.eq_ignore_ascii_case("error") {
                action.message = Some("Error".to_string());
            }
            Ok(true)
        })
    }

    /// An event write in one transaction: `edit` changes the action's events (and message) and
    /// says whether it changed anything; if so the record is stored with `updated_at` moved to
    /// `bump_to`, when given.
    fn write_events(
        &self,
        server: &Uuid,
        key: ActionKey,
        bump_to: Option<Micros>,
        edit: impl Fn(&mut Action, &mut Vec<Event>) -> Result<bool>,
    ) -> Result<Applied<ActionWithEvents>> {
        let written = (&self.actions, &self.lag).transaction(|(actions, lag)| {
            let (mut action, mut list) = tx_read(actions, &key, decode_action_with_events)?;
            let changed =
                edit(&mut action, &mut list).map_err(ConflictableTransactionError::Abort)?;
            if changed {
                if let Some(at) = bump_to {
                    action.updated_at = Some(at);
                    widen_lag(lag, server, at.saturating_sub(action.start_time))?;
                }
                actions.insert(&key, encode_action(&action, &list))?;
            }
            Ok(Written {
                record: (action, list),
                changed,
            })
        })?;
        Ok(self.applied(server, written))
    }

    // ----- the same writes, waiting for durability -----

    pub fn upsert_server(&self, id: &Uuid, fields: ServerFields) -> Result<Written<Server>> {
        self.apply_upsert_server(id, fields)?.wait(self)
    }

    pub fn soft_delete_server(&self, id: &Uuid, at: Micros) -> Result<Written<Server>> {
        self.apply_soft_delete_server(id, at)?.wait(self)
    }

    pub fn start_action(
        &self,
        server: &Uuid,
        start: ActionStart,
    ) -> Result<Written<ActionWithEvents>> {
        self.apply_start_action(server, start)?.wait(self)
    }

    pub fn finish_action(
        &self,
        server: &Uuid,
        request_id: &str,
        finish_time: Micros,
        time_given: bool,
    ) -> Result<Written<ActionWithEvents>> {
        self.apply_finish_action(server, request_id, finish_time, time_given)?
            .wait(self)
    }

    pub fn start_event(
        &self,
        server: &Uuid,
        start: EventStart,
    ) -> Result<Written<ActionWithEvents>> {
        self.apply_start_event(server, start)?.wait(self)
    }

    pub fn finish_event(
        &self,
        server: &Uuid,
        finish: EventFinish,
    ) -> Result<Written<ActionWithEvents>> {
        self.apply_finish_event(server, finish)?.wait(self)
    }

    // ----- helpers -----

    /// A write that changed something gets a group-commit ticket of its own. One that changed
    /// nothing (a retry) still waits for what is already applied: the write it repeats may not
    /// be on disk yet.
    fn applied<T>(&self, server: &Uuid, written: Written<T>) -> Applied<T> {
        let ticket = if written.changed {
            self.commit.ticket_for(*server)
        } else {
            self.commit.latest()
        };
        Applied { written, ticket }
    }

    /// An action's events, oldest first.
    pub fn events_of(&self, key: &ActionKey) -> Result<Vec<Event>> {
        match self.actions.get(key)? {
            Some(bytes) => decode_events(split_action(&bytes)?.1),
            None => Ok(Vec::new()),
        }
    }

    /// The action a write names: by request id or, with the fallback, the server's newest one.
    /// `true` when found by its request id.
    fn action_key_for(
        &self,
        server: &Uuid,
        request_id: &str,
        fallback: bool,
    ) -> Result<(ActionKey, bool)> {
        if self.server(server)?.is_none() {
            return Err(StoreError::ServerNotFound(*server));
        }
        if let Some((key, _)) = self.find_action(server, request_id)? {
            return Ok((key, true));
        }
        let not_found = || StoreError::ActionNotFound {
            server: *server,
            request_id: request_id.to_string(),
        };
        if !fallback {
            return Err(not_found());
        }
        match self.actions.scan_prefix(server.as_bytes()).keys().next() {
            Some(key) => keys::as_action_key(&key?)
                .map(|key| (key, false))
                .ok_or_else(|| StoreError::Corrupt("action key".into())),
            None => Err(not_found()),
        }
    }
}

impl Drop for Store {
    /// The flusher finishes what is outstanding and exits (sled flushes on its own drop).
    fn drop(&mut self) {
        self.commit.stop();
    }
}

fn updated_within(
    updated_at: Option<Micros>,
    since: Option<Micros>,
    before: Option<Micros>,
) -> bool {
    if since.is_none() && before.is_none() {
        return true;
    }
    let Some(t) = updated_at else { return false };
    since.is_none_or(|s| t >= s) && before.is_none_or(|b| t <= b)
}

/// A retried action start names the same action; without an explicit time, the request id,
/// name and requester are what identify it.
fn is_retry_of(existing: &Action, start: &ActionStart) -> bool {
    existing.action == start.action
        && existing.user_id == start.user_id
        && existing.project_id == start.project_id
        && (!start.time_given || existing.start_time == start.start_time)
}

/// A record read inside a transaction; the write found it just before, so it must be there.
fn tx_read<T>(
    tree: &TransactionalTree,
    key: &[u8],
    decode: impl Fn(&[u8]) -> Result<T>,
) -> TxResult<T> {
    match tree.get(key)? {
        Some(bytes) => decode(&bytes).map_err(ConflictableTransactionError::Abort),
        None => abort(StoreError::Corrupt("record vanished during a write".into())),
    }
}

impl Store {
    /// `widen_lag` for a writer that holds the server's lock instead of a transaction.
    fn widen_lag_outside_transaction(&self, server: &Uuid, hi: i64, lo: i64) -> Result<()> {
        let old = Lag::decode(self.lag.get(server.as_bytes())?);
        let new = Lag {
            max: old.max.max(hi),
            min: old.min.min(lo),
        };
        if new != old {
            self.lag.insert(server.as_bytes(), &new.encode())?;
        }
        Ok(())
    }
}

fn widen_lag(
    tree: &TransactionalTree,
    server: &Uuid,
    lag: i64,
) -> Result<(), UnabortableTransactionError> {
    let old = Lag::decode(tree.get(server.as_bytes())?);
    let new = Lag {
        max: old.max.max(lag),
        min: old.min.min(lag),
    };
    if new != old {
        tree.insert(server.as_bytes(), &new.encode())?;
    }
    Ok(())
}

/// A kill during `Db::open` can leave a half-written `snap.<lsn>.generating` that sled would
/// later pick as the newest snapshot and then refuse to open (sled #1527/#1533). The previous
/// snapshot is only removed after the rename, so dropping the half-written one loses nothing.
fn remove_half_written_snapshots(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            log::warn!(
                "removing half-written sled snapshot {} left by an interrupted start",
                entry.path().display()
            );
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(".{0,20}")
    }

    fn action() -> impl Strategy<Value = Action> {
        (
            ".{1,20}",
            ".{1,20}",
            text(),
            text(),
            any::<i64>(),
            any::<Option<i64>>(),
            any::<Option<i64>>(),
            text(),
        )
            .prop_map(
                |(
                    request_id,
                    action,
                    user_id,
                    project_id,
                    start_time,
                    finish_time,
                    updated_at,
                    message,
                )| Action {
                    request_id,
                    action,
                    user_id,
                    project_id,
                    start_time,
                    finish_time,
                    updated_at,
                    message,
                    created_at: finish_time,
                },
            )
    }

    fn event() -> impl Strategy<Value = Event> {
        (
            ".{1,20}",
            any::<Option<i64>>(),
            any::<Option<i64>>(),
            text(),
            text(),
            text(),
            text(),
        )
            .prop_map(
                |(event, start_time, finish_time, result, traceback, host, details)| Event {
                    event,
                    start_time,
                    finish_time,
                    result,
                    traceback,
                    host,
                    details,
                    created_at: None,
                },
            )
    }

    proptest! {
        #[test]
        fn records_round_trip(a in action(), e in event()) {
            prop_assert_eq!(decode::<Action>(&encode(&a)).unwrap(), a);
            prop_assert_eq!(decode::<Event>(&encode(&e)).unwrap(), e);
        }

        #[test]
        fn action_records_hold_their_events_after_the_action(
            a in action(),
            events in proptest::collection::vec(event(), 0..4),
        ) {
            let record = encode_action(&a, &events);
            // A list reads the action alone, in place or owned.
            prop_assert_eq!(decode::<Action>(&record).unwrap(), a.clone());
            prop_assert_eq!(decode_view(&record).unwrap(), a.view());
            prop_assert_eq!(decode_action_with_events(&record).unwrap(), (a, events));
        }
    }

    #[test]
    fn a_layout_3_store_is_migrated_on_open_and_loses_nothing() {
        let dir = std::env::temp_dir().join(format!("nova-actions-unit-{}", Uuid::new_v4()));
        let server = Uuid::from_u128(7);
        let action = |n: i64| Action {
            request_id: format!("req-{n}"),
            action: "reboot".into(),
            user_id: None,
            project_id: None,
            start_time: n,
            finish_time: None,
            updated_at: Some(n),
            message: None,
            created_at: None,
        };
        let event = |name: &str| Event {
            event: name.into(),
            start_time: Some(1),
            finish_time: None,
            result: None,
            traceback: None,
            host: Some("h".into()),
            details: None,
            created_at: None,
        };
        // 2,500 actions (three migration batches), every other one with two events.
        {
            let db = sled::open(&dir).unwrap();
            let (actions, events) = (
                db.open_tree("actions").unwrap(),
                db.open_tree("events").unwrap(),
            );
            for n in 0..2500 {
                let key = action_key(&server, n, n as u64);
                actions.insert(key, encode(&action(n))).unwrap();
                if n % 2 == 0 {
                    events
                        .insert(key, encode(&vec![event("a"), event("b")]))
                        .unwrap();
                }
            }
            db.insert("format", &[3]).unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(&dir).unwrap();
        for n in [0, 1, 1234, 2499] {
            let key = action_key(&server, n, n as u64);
            let (stored, events) =
                decode_action_with_events(&store.actions.get(key).unwrap().unwrap()).unwrap();
            assert_eq!(stored, action(n));
            let expected = if n % 2 == 0 {
                vec![event("a"), event("b")]
            } else {
                vec![]
            };
            assert_eq!(events, expected, "action {n}");
        }
        assert_eq!(store.actions.len(), 2500);
        assert_eq!(store.db.get("format").unwrap().unwrap().as_ref(), [LAYOUT]);
        assert!(
            !store
                .db
                .tree_names()
                .iter()
                .any(|n| n.as_ref() == b"events")
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn records_carry_their_format_version() {
        let server = Server {
            project_id: "p".into(),
            user_id: None,
            host: None,
            created_at: None,
            deleted: true,
            deleted_at: Some(5),
        };
        let bytes = encode(&server);
        assert_eq!(bytes[0], RECORD_FORMAT);
        assert_eq!(decode::<Server>(&bytes).unwrap(), server);
        let mut future = bytes.clone();
        future[0] = RECORD_FORMAT + 1;
        assert!(matches!(
            decode::<Server>(&future),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(decode::<Server>(&[]), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn a_retry_is_not_acknowledged_before_the_write_it_repeats() {
        let dir = std::env::temp_dir().join(format!("nova-actions-unit-{}", Uuid::new_v4()));
        let store = Store::open(&dir).unwrap();
        let id = Uuid::from_u128(3);
        let fields = || ServerFields {
            project_id: "p".into(),
            user_id: None,
            host: None,
            created_at: Some(1),
        };
        let first = store.apply_upsert_server(&id, fields()).unwrap();
        let retry = store.apply_upsert_server(&id, fields()).unwrap();
        assert!(first.written.changed && !retry.written.changed);
        // The retry waits for a ticket covering the first write, not for nothing.
        assert!(
            retry.ticket >= first.ticket,
            "{} < {}",
            retry.ticket,
            first.ticket
        );
        retry.wait(&store).unwrap();
        assert!(store.commit.durable_ticket() >= first.ticket);
        first.wait(&store).unwrap();
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn half_written_snapshots_are_removed_before_open() {
        let dir = std::env::temp_dir().join(format!("nova-actions-unit-{}", Uuid::new_v4()));
        {
            let store = Store::open(&dir).unwrap();
            store
                .upsert_server(
                    &Uuid::from_u128(1),
                    ServerFields {
                        project_id: "p".into(),
                        user_id: None,
                        host: None,
                        created_at: None,
                    },
                )
                .unwrap();
        }
        std::fs::write(dir.join("snap.0000000000001234.generating"), b"half").unwrap();
        let store = Store::open(&dir).unwrap();
        assert!(!dir.join("snap.0000000000001234.generating").exists());
        assert_eq!(
            store
                .server(&Uuid::from_u128(1))
                .unwrap()
                .unwrap()
                .project_id,
            "p"
        );
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn temp_store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("nova-actions-unit-{}", Uuid::new_v4()));
        (Store::open(&dir).unwrap(), dir)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The bounded range scan returns exactly what filtering the whole history would.
        #[test]
        fn filtered_scans_match_a_full_filter(
            rows in proptest::collection::vec((0i64..40, proptest::option::of(-10i64..30)), 0..40),
            marker in proptest::option::of(0usize..40),
            since in proptest::option::of(0i64..60),
            before in proptest::option::of(0i64..60),
        ) {
            let (store, dir) = temp_store();
            let server = Uuid::from_u128(42);
            let history = crate::model::ServerHistory {
                uuid: server,
                server: Server { project_id: "p".into(), user_id: None, host: None, created_at: None, deleted: false, deleted_at: None },
                actions: rows.iter().enumerate().map(|(i, (start, lag))| (Action {
                    request_id: format!("req-{i}"),
                    action: "a".into(),
                    user_id: None,
                    project_id: None,
                    start_time: *start,
                    finish_time: None,
                    updated_at: lag.map(|l| start + l),
                    message: None,
                    created_at: None,
                }, Vec::new())).collect(),
            };
            store.import_server(&history).unwrap();
            // The model: recording order breaks start-time ties, newest first.
            let mut model: Vec<(i64, usize, Option<i64>)> =
                rows.iter().enumerate().map(|(i, (s, l))| (*s, i, l.map(|l| s + l))).collect();
            model.sort_by_key(|r| std::cmp::Reverse((r.0, r.1)));
            let marker = marker.filter(|m| *m < rows.len());
            if let Some(m) = marker {
                let pos = model.iter().position(|r| r.1 == m).unwrap();
                model.drain(..=pos);
            }
            model.retain(|r| {
                (since.is_none() && before.is_none())
                    || r.2.is_some_and(|u| since.is_none_or(|s| u >= s) && before.is_none_or(|b| u <= b))
            });
            let expected: Vec<String> = model.iter().map(|r| format!("req-{}", r.1)).collect();
            let older_than = marker.map(|m| store.find_action(&server, &format!("req-{m}")).unwrap().unwrap().0);
            let got: Vec<String> = store
                .actions_newest_first(&server, &ActionFilter { older_than, since, before })
                .unwrap()
                .map(|r| r.unwrap().1.request_id)
                .collect();
            drop(store);
            std::fs::remove_dir_all(&dir).unwrap();
            prop_assert_eq!(got, expected);
        }
    }
}
