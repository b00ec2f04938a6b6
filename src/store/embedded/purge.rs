//! Purging a server and its whole history. A history can be far larger than one transaction
//! should be, so a purge is made all-or-nothing as seen from outside with a tombstone: one
//! transaction removes the server record and buries its id in the `purging` tree, and only then
//! is the history removed in bounded batches. Until the tombstone goes:
//! - reads find no server, so they answer 404 as for any unknown id;
//! - registering or importing that id again first finishes the purge (a new owner never sees
//!   the old owner's history);
//! - start-up and every retention pass finish whatever purges a crash interrupted.

use sled::Transactional;
use uuid::Uuid;

use super::{Result, SledStore, StoreError, decode_server};
use crate::store::keys::UUID_LEN;

impl SledStore {
    /// Removes a server and its whole history for good. Returns how many actions went, or None
    /// when there was nothing of that server to remove. Running it again after an interrupted
    /// purge finishes that purge.
    pub fn purge_server(&self, id: &Uuid) -> Result<Option<u64>> {
        let _one_writer = self.write_lock(id)?;
        let buried = self.purging.contains_key(id.as_bytes())?;
        let registered = self.servers.contains_key(id.as_bytes())?;
        if !buried && !registered && !self.has_history(id)? {
            return Ok(None);
        }
        self.commit.note(*id);
        if !buried {
            let old = self.servers.get(id.as_bytes())?;
            self.bury(id)?;
            // After the record: a crash in between leaves stale entries, which listings skip.
            if let Some(old) = old {
                self.unindex_server(id, &decode_server(&old)?, None)?;
            }
        }
        self.remove_history(id).map(Some)
    }

    /// Finishes every purge a crash interrupted. Returns how many it finished.
    pub fn resume_purges(&self) -> Result<u64> {
        let mut finished = 0;
        while let Some(item) = self.purging.iter().keys().next() {
            let key = item?;
            let id =
                Uuid::from_slice(&key).map_err(|_| StoreError::Corrupt("tombstone key".into()))?;
            let _one_writer = self.write_lock(&id)?;
            if self.purging.contains_key(key)? {
                let actions = self.remove_history(&id)?;
                log::info!("finished the interrupted purge of {id} ({actions} actions removed)");
                finished += 1;
            }
        }
        Ok(finished)
    }

    /// Finishes a purge of `id` that is still under way, before the id is written again. The
    /// caller holds `id`'s lock.
    pub(super) fn finish_purge_of(&self, id: &Uuid) -> Result<()> {
        if self.purging.contains_key(id.as_bytes())? {
            log::info!("{id} is written again: finishing its interrupted purge first");
            self.remove_history(id)?;
        }
        Ok(())
    }

    /// Whether anything is stored under purge tombstones (for status and tests).
    pub fn purges_pending(&self) -> Result<u64> {
        Ok(self.purging.len() as u64)
    }

    /// Removes the server record and buries its id, in one transaction, durably: from here on
    /// the server is gone for every reader, whatever happens to the rest of the purge.
    fn bury(&self, id: &Uuid) -> Result<()> {
        (&self.servers, &self.purging, &self.lag).transaction(|(servers, purging, lag)| {
            servers.remove(id.as_bytes())?;
            lag.remove(id.as_bytes())?;
            purging.insert(id.as_bytes(), &[][..])?;
            Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        self.durable()
    }

    /// Removes a buried server's index entries and actions, then, once that is on disk, its
    /// tombstone. Returns how many actions it removed.
    fn remove_history(&self, id: &Uuid) -> Result<u64> {
        remove_prefix(&self.by_request, id)?;
        let actions = remove_prefix(&self.actions, id)?;
        // The tombstone may go only once nothing of the history can come back after a crash.
        self.durable()?;
        self.purging.remove(id.as_bytes())?;
        self.durable()?;
        Ok(actions)
    }

    fn has_history(&self, id: &Uuid) -> Result<bool> {
        Ok(self.actions.scan_prefix(id.as_bytes()).next().is_some()
            || self.by_request.scan_prefix(id.as_bytes()).next().is_some())
    }

    /// Layout 5 brought tombstones. A store written before it may hold the remains of purges a
    /// crash interrupted (history without a server record): bury each such id, so that it is
    /// finished like any interrupted purge. One seek per server, not one per action.
    pub(super) fn bury_orphaned_histories(&self) -> Result<u64> {
        let mut buried = 0;
        for tree in [&self.actions, &self.by_request] {
            let mut from = [0u8; UUID_LEN];
            while let Some(item) = tree.range(from..).keys().next() {
                let key = item?;
                let prefix = key
                    .get(..UUID_LEN)
                    .ok_or_else(|| StoreError::Corrupt("short key".into()))?;
                if !self.servers.contains_key(prefix)? && !self.purging.contains_key(prefix)? {
                    self.purging.insert(prefix, &[][..])?;
                    buried += 1;
                }
                let server = u128::from_be_bytes(prefix.try_into().expect("16 bytes"));
                match server.checked_add(1) {
                    Some(next) => from = next.to_be_bytes(),
                    None => break,
                }
            }
        }
        Ok(buried)
    }
}

/// Removes every key of `server` from `tree`, one by one: a sled batch takes the store-wide
/// write lock and would stall every reader while it applies (the tombstone, not a batch, makes
/// the purge atomic). Returns how many it removed.
fn remove_prefix(tree: &sled::Tree, server: &Uuid) -> Result<u64> {
    let mut removed = 0;
    for key in tree.scan_prefix(server.as_bytes()).keys() {
        tree.remove(key?)?;
        removed += 1;
    }
    Ok(removed)
}
