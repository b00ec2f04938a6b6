//! Bulk import of complete histories. Idempotent: an action already stored (same server, start
//! time and request id, matched in recording order) is overwritten in place, not added again, so
//! importing the same file twice changes nothing.

use std::collections::HashSet;

use uuid::Uuid;

use super::{
    ImportCounts, Result, SledStore, StoreError, decode_action_with_events, encode_action,
    encode_server, semantics,
};
use crate::model::{Action, Event, ServerHistory};
use crate::store::keys::{
    ActionKey, action_key, first_started_at_or_before, is_newer, last_started_at_or_after,
    request_key,
};

/// Actions planned before they are written (see `write_batch`).
const BATCH_ACTIONS: usize = 500;

/// One action to store, and where.
struct Planned<'a> {
    key: ActionKey,
    action: &'a Action,
    events: &'a [Event],
}

impl SledStore {
    /// Stores one server line. Not durable on return: call [`Store::durable`] when a group of
    /// lines is done (the CLI and the HTTP endpoint do so before reporting success).
    pub fn import_server(&self, history: &ServerHistory) -> Result<ImportCounts> {
        let id = &history.uuid;
        // The check for what is already stored and the writes are one step: a concurrent
        // import of the same line, or an HTTP write to the server, waits.
        let _one_writer = self.write_lock(id)?;
        self.finish_purge_of(id)?;
        self.commit.note(*id);
        let old = self.server(id)?;
        let server =
            semantics::imported_server(old.as_ref(), &history.server, self.db.generate_id()?);
        self.index_server(id, &server)?;
        self.servers.insert(id.as_bytes(), encode_server(&server))?;
        if let Some(old) = &old {
            self.unindex_server(id, old, Some(&server))?;
        }
        // A server new to this store has nothing its actions could match.
        let fresh = old.is_none() && self.actions.scan_prefix(id.as_bytes()).next().is_none();
        let mut counts = ImportCounts {
            servers: 1,
            ..ImportCounts::default()
        };
        let mut claimed = HashSet::new();
        let mut batch = Vec::with_capacity(BATCH_ACTIONS);
        for (action, events) in &history.actions {
            let key = match if fresh {
                None
            } else {
                self.match_existing(id, action, &mut claimed)?
            } {
                Some((key, stored, stored_events))
                    if stored == *action && stored_events == *events =>
                {
                    // A crash can have come between an action and its index entry.
                    self.index_request(id, &key, &action.request_id)?;
                    counts.unchanged += 1;
                    continue;
                }
                Some((key, _, _)) => key,
                None => action_key(id, action.start_time, self.db.generate_id()?),
            };
            batch.push(Planned {
                key,
                action,
                events,
            });
            counts.actions += 1;
            counts.events += events.len() as u64;
            if batch.len() == BATCH_ACTIONS {
                self.write_batch(id, std::mem::take(&mut batch))?;
            }
        }
        self.write_batch(id, batch)?;
        Ok(counts)
    }

    /// The stored action this imported one stands for, if any: same start time and request id,
    /// the first one not already matched by an earlier action of the same line.
    #[allow(clippy::type_complexity)]
    fn match_existing(
        &self,
        server: &Uuid,
        action: &Action,
        claimed: &mut HashSet<ActionKey>,
    ) -> Result<Option<(ActionKey, Action, Vec<Event>)>> {
        // Same start time, in recording order (oldest seq first).
        let newest = first_started_at_or_before(server, action.start_time);
        let oldest = last_started_at_or_after(server, action.start_time);
        for item in self.actions.range(newest..=oldest).rev() {
            let (key, bytes) = item?;
            let key: ActionKey = key
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Corrupt("action key".into()))?;
            let (stored, events) = decode_action_with_events(&bytes)?;
            if stored.request_id == action.request_id && claimed.insert(key) {
                return Ok(Some((key, stored, events)));
            }
        }
        Ok(None)
    }

    /// Writes a batch key by key rather than in one sled transaction: a transaction takes
    /// sled's store-wide write lock, stalling every reader while it applies, and a long import
    /// would apply one after another. The server's lock keeps other writers out, and the lag
    /// bounds are widened before any action they must cover becomes visible.
    fn write_batch(&self, server: &Uuid, batch: Vec<Planned<'_>>) -> Result<()> {
        let lags = batch.iter().filter_map(|p| {
            p.action
                .updated_at
                .map(|u| u.saturating_sub(p.action.start_time))
        });
        if let (Some(hi), Some(lo)) = (lags.clone().max(), lags.min()) {
            self.widen_lag_outside_transaction(server, hi, lo)?;
        }
        for planned in &batch {
            let record = encode_action(planned.action, planned.events);
            self.actions.insert(&planned.key[..], record)?;
            self.index_request(server, &planned.key, &planned.action.request_id)?;
        }
        Ok(())
    }

    /// Points `request_id` at `key` unless a newer action already holds it.
    fn index_request(&self, server: &Uuid, key: &ActionKey, request_id: &str) -> Result<()> {
        let rkey = request_key(server, request_id);
        let newest = self.by_request.get(&rkey)?;
        if newest.as_ref().is_none_or(|n| is_newer(key, n)) {
            self.by_request.insert(rkey, &key[..])?;
        }
        Ok(())
    }
}
