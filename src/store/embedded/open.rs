//! Opening a store: sled's configuration, the layout check and migrations, and closing.

use std::fs::File;
use std::path::Path;

use sled::transaction::ConflictableTransactionError;
use sled::{IVec, Transactional};

use super::*;

impl SledStore {
    /// Opens (or creates) the store in `dir` with the default page cache.
    pub fn open(dir: &Path) -> Result<SledStore> {
        SledStore::open_with(dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens the store with a page cache of `cache_bytes`: the main lever on resident memory.
    pub fn open_with(dir: &Path, cache_bytes: u64) -> Result<SledStore> {
        let open_err = |reason: String| StoreError::Open {
            path: dir.to_path_buf(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        remove_half_written_snapshots(dir).map_err(|e| open_err(e.to_string()))?;
        let db = open_sled(dir, cache_bytes).map_err(|e| match e {
            sled::Error::Io(io) if is_lock_error(&io) => open_err(
                "it is in use by another process (a running service?): stop it first, or use \
                 the service's /ingest/v1/import and /ingest/v1/export endpoints"
                    .into(),
            ),
            other => open_err(format!("{other} (the store is left untouched)")),
        })?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| open_err(e.to_string()));
        let store = SledStore {
            dir: dir.to_path_buf(),
            servers: tree("servers")?,
            actions: tree("actions")?,
            by_request: tree("action_by_request")?,
            lag: tree("lag")?,
            servers_by_created: tree("servers_by_created")?,
            servers_by_project: tree("servers_by_project")?,
            meta: tree("meta")?,
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

    /// See `Store::close`: every handle is dropped (sled flushes), then sled is opened and
    /// dropped once more, which leaves a snapshot of the log's current end.
    pub fn close(self) -> Result<()> {
        let dir = self.dir.clone();
        drop(self);
        let started = std::time::Instant::now();
        remove_half_written_snapshots(&dir).map_err(|e| StoreError::Io(e.into()))?;
        drop(open_sled(&dir, SETTLE_CACHE_BYTES)?);
        log::debug!(
            "store {} settled for the next start in {:.2} s",
            dir.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    pub(super) fn check_format(&self) -> Result<()> {
        loop {
            match self.db.get("format")? {
                None => {
                    self.db.insert("format", &[LAYOUT])?;
                    return self.durable();
                }
                Some(v) if v.as_ref() == [LAYOUT] => return Ok(()),
                Some(v) if v.as_ref() == [5] => self.migrate_from_layout_5()?,
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

    /// Layout 5 had no server listing indexes: build them. Entries are idempotent, so an
    /// interrupted build simply runs again.
    pub(super) fn migrate_from_layout_5(&self) -> Result<()> {
        let indexed = self.build_server_index()?;
        log::info!("store migrated to layout 6: {indexed} servers indexed for listing");
        self.db.insert("format", &[6])?;
        self.durable()
    }

    /// Layout 4 had no tombstones: remains of interrupted purges are buried now, and finished
    /// by [`Store::resume_purges`] like any purge a crash interrupted.
    pub(super) fn migrate_from_layout_4(&self) -> Result<()> {
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
    pub(super) fn migrate_from_layout_3(&self) -> Result<()> {
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
}

impl Drop for SledStore {
    /// The flusher finishes what is outstanding and exits (sled flushes on its own drop).
    fn drop(&mut self) {
        self.commit.stop();
    }
}

/// Settling reads no data: the page cache only needs to exist.
const SETTLE_CACHE_BYTES: u64 = 1 << 20;

/// How long an open waits for the store's lock. sled's background writes can hold the lock for
/// a moment after the last handle in this process is dropped, so reopening at once (tests, a
/// restart inside one process) may find it taken; another process holding it still fails,
/// only this much later.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn open_sled(dir: &Path, cache_bytes: u64) -> sled::Result<sled::Db> {
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            // Every write is flushed by the group commit; a timer flushing on top only competes.
            .flush_every_ms(None)
            .open();
        match opened {
            Err(sled::Error::Io(io)) if is_lock_error(&io) && started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn is_lock_error(e: &std::io::Error) -> bool {
    e.to_string().contains("could not acquire lock")
}

/// A kill during `Db::open` can leave a half-written `snap.<lsn>.generating` that sled would
/// later pick as the newest snapshot and then refuse to open (sled #1527/#1533). The previous
/// snapshot is only removed after the rename, so dropping the half-written one loses nothing.
pub(super) fn remove_half_written_snapshots(dir: &Path) -> std::io::Result<()> {
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
