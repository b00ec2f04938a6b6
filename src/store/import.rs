//! Bulk import of complete histories. Idempotent: an action already stored (same server, start
//! time and request id, matched in recording order) is overwritten in place, not added again, so
//! importing the same file twice changes nothing.

use std::collections::HashSet;

use sled::Transactional;
use uuid::Uuid;

use super::keys::{
    ActionKey, action_key, event_key, first_started_at_or_before, is_newer,
    last_started_at_or_after, request_key,
};
use super::{Result, Store, StoreError, decode, encode, widen_lag};
use crate::model::{Action, Event, ServerHistory};

/// Actions written per transaction: large enough to amortize the commit, small enough that
/// sled's in-memory transaction state stays small.
const BATCH_ACTIONS: usize = 500;

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

/// One action to store: where, what, and which old event keys it replaces.
struct Planned<'a> {
    key: ActionKey,
    action: &'a Action,
    events: &'a [Event],
    stale_events: Vec<Vec<u8>>,
}

impl Store {
    /// Stores one server line. Not durable on return: call [`Store::durable`] when a group of
    /// lines is done (the CLI and the HTTP endpoint do so before reporting success).
    pub fn import_server(&self, history: &ServerHistory) -> Result<ImportCounts> {
        let id = &history.uuid;
        // A server new to this store has nothing its actions could match.
        let fresh = self
            .servers
            .insert(id.as_bytes(), encode(&history.server))?
            .is_none()
            && self.actions.scan_prefix(id.as_bytes()).next().is_none();
        let mut counts = ImportCounts {
            servers: 1,
            ..ImportCounts::default()
        };
        let mut claimed = HashSet::new();
        let mut batch = Vec::with_capacity(BATCH_ACTIONS);
        for (action, events) in &history.actions {
            let existing = if fresh {
                None
            } else {
                self.match_existing(id, action, &mut claimed)?
            };
            if let Some((key, stored, stored_events)) = &existing {
                if stored == action && stored_events == events {
                    counts.unchanged += 1;
                    continue;
                }
                let stale = self
                    .events
                    .scan_prefix(key)
                    .keys()
                    .map(|k| k.map(|k| k.to_vec()));
                batch.push(Planned {
                    key: *key,
                    action,
                    events,
                    stale_events: stale.collect::<Result<_, _>>()?,
                });
            } else {
                let key = action_key(id, action.start_time, self.db.generate_id()?);
                batch.push(Planned {
                    key,
                    action,
                    events,
                    stale_events: Vec::new(),
                });
            }
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
            let stored: Action = decode(&bytes)?;
            if stored.request_id == action.request_id && claimed.insert(key) {
                let events = self
                    .events
                    .scan_prefix(key)
                    .values()
                    .rev()
                    .map(|v| decode(&v?))
                    .collect::<Result<Vec<Event>>>()?;
                return Ok(Some((key, stored, events)));
            }
        }
        Ok(None)
    }

    fn write_batch(&self, server: &Uuid, batch: Vec<Planned<'_>>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut event_keys = Vec::with_capacity(batch.len());
        for planned in &batch {
            let keys = planned
                .events
                .iter()
                .map(|_| {
                    self.db
                        .generate_id()
                        .map(|seq| event_key(&planned.key, seq))
                })
                .collect::<sled::Result<Vec<_>>>()?;
            event_keys.push(keys);
        }
        (&self.actions, &self.by_request, &self.events, &self.lag)
            .transaction(|(actions, by_request, events, lag)| {
                for (planned, new_keys) in batch.iter().zip(&event_keys) {
                    actions.insert(&planned.key, encode(planned.action))?;
                    let rkey = request_key(server, &planned.action.request_id);
                    let newest = by_request.get(&rkey)?;
                    if newest.as_ref().is_none_or(|n| is_newer(&planned.key, n)) {
                        by_request.insert(rkey, &planned.key)?;
                    }
                    for stale in &planned.stale_events {
                        events.remove(stale.as_slice())?;
                    }
                    for (key, event) in new_keys.iter().zip(planned.events) {
                        events.insert(&key[..], encode(event))?;
                    }
                    if let Some(updated) = planned.action.updated_at {
                        widen_lag(
                            lag,
                            server,
                            updated.saturating_sub(planned.action.start_time),
                        )?;
                    }
                }
                Ok(())
            })
            .map_err(StoreError::from)
    }
}
