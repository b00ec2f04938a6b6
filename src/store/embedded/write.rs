//! Writes with Nova's semantics. Each is one transaction under the server's lock, and is
//! acknowledged only once its group commit is durable.

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use uuid::Uuid;

use super::*;

impl SledStore {
    /// Starts a write to `id`: refused after a failed flush, then one writer at a time for
    /// that server until the guard drops.
    pub(super) fn write_lock(&self, id: &Uuid) -> Result<ServerGuard<'_>> {
        self.writable()?;
        Ok(self.locks.lock(id))
    }

    pub fn apply_upsert_server(&self, id: &Uuid, fields: ServerFields) -> Result<Applied<Server>> {
        let _one_writer = self.write_lock(id)?;
        self.finish_purge_of(id)?;
        let seq = self.db.generate_id()?;
        let trees = (
            &self.servers,
            &self.servers_by_created,
            &self.servers_by_project,
        );
        let written = trees.transaction(|(servers, by_created, by_project)| {
            let old: Option<Server> = servers
                .get(id.as_bytes())?
                .map(|b| tx_decode_server(&b))
                .transpose()?;
            let server = semantics::upserted_server(old.as_ref(), &fields, seq);
            let changed = old.as_ref() != Some(&server);
            if changed {
                servers.insert(id.as_bytes(), encode_server(&server))?;
                let indexes = (by_created, by_project);
                servers::reindex_in(indexes, id, old.as_ref(), Some(&server))?;
            }
            Ok(Written {
                record: server,
                changed,
            })
        })?;
        Ok(self.applied(id, written))
    }

    pub fn apply_soft_delete_server(&self, id: &Uuid, at: Micros) -> Result<Applied<Server>> {
        let _one_writer = self.write_lock(id)?;
        let trees = (
            &self.servers,
            &self.servers_by_created,
            &self.servers_by_project,
        );
        let written = trees.transaction(|(servers, by_created, by_project)| {
            let Some(bytes) = servers.get(id.as_bytes())? else {
                return abort(StoreError::ServerNotFound(*id));
            };
            let old = tx_decode_server(&bytes)?;
            let mut server = old.clone();
            let changed = semantics::soft_delete(&mut server, at);
            if changed {
                servers.insert(id.as_bytes(), encode_server(&server))?;
                // The listing indexes hold a copy of the record.
                servers::reindex_in((by_created, by_project), id, Some(&old), Some(&server))?;
            }
            Ok(Written {
                record: server,
                changed,
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
        let _one_writer = self.write_lock(server)?;
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
                    if semantics::is_retry_of(&existing.0, &start) {
                        return Ok(Written {
                            record: existing,
                            changed: false,
                        });
                    }
                }
                let action = semantics::started_action(&start);
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
        let _one_writer = self.write_lock(server)?;
        let (key, _) = self.action_key_for(server, request_id, false)?;
        let written = (&self.actions, &self.lag).transaction(|(actions, lag)| {
            let (mut action, events) = tx_read(actions, &key, decode_action_with_events)?;
            if !semantics::finish_action(&mut action, finish_time, time_given) {
                return Ok(Written {
                    record: (action, events),
                    changed: false,
                });
            }
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
        let _one_writer = self.write_lock(server)?;
        // The fallback attaches to the newest action without touching its updated_at.
        let (key, bump) =
            self.action_key_for(server, &start.request_id, start.fallback_to_last_action)?;
        let at = bump.then_some(start.start_time);
        self.write_events(server, key, at, |_, list| {
            Ok(semantics::start_event(list, &start))
        })
    }

    pub fn apply_finish_event(
        &self,
        server: &Uuid,
        finish: EventFinish,
    ) -> Result<Applied<ActionWithEvents>> {
        let _one_writer = self.write_lock(server)?;
        let (key, bump) =
            self.action_key_for(server, &finish.request_id, finish.fallback_to_last_action)?;
        let at = bump.then_some(finish.finish_time);
        self.write_events(server, key, at, |action, list| {
            semantics::finish_event(action, list, &finish)
        })
    }

    /// An event write in one transaction: `edit` changes the action's events (and message) and
    /// says whether it changed anything; if so the record is stored with `updated_at` moved to
    /// `bump_to`, when given.
    pub(super) fn write_events(
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

    // ----- the same writes, waiting for durability (for tests) -----

    #[cfg(test)]
    pub fn upsert_server(&self, id: &Uuid, fields: ServerFields) -> Result<Written<Server>> {
        self.apply_upsert_server(id, fields)?.wait_on(self)
    }

    // ----- helpers -----

    /// A write that changed something gets a group-commit ticket of its own. One that changed
    /// nothing (a retry) still waits for what is already applied: the write it repeats may not
    /// be on disk yet.
    pub(super) fn applied<T>(&self, server: &Uuid, written: Written<T>) -> Applied<T> {
        let ticket = if written.changed {
            self.commit.ticket_for(*server)
        } else {
            self.commit.latest()
        };
        Applied {
            written,
            ticket: Some(ticket),
            project: None,
        }
    }

    /// The action a write names: by request id or, with the fallback, the server's newest one.
    /// `true` when found by its request id.
    pub(super) fn action_key_for(
        &self,
        server: &Uuid,
        request_id: &str,
        fallback: bool,
    ) -> Result<(ActionKey, bool)> {
        if self.server(server)?.is_none() {
            return Err(StoreError::ServerNotFound(*server));
        }
        if let Some((key, _)) = self.find_record(server, request_id)? {
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

/// A record read inside a transaction; the write found it just before, so it must be there.
pub(super) fn tx_read<T>(
    tree: &TransactionalTree,
    key: &[u8],
    decode: impl Fn(&[u8]) -> Result<T>,
) -> TxResult<T> {
    match tree.get(key)? {
        Some(bytes) => decode(&bytes).map_err(ConflictableTransactionError::Abort),
        None => abort(StoreError::Corrupt("record vanished during a write".into())),
    }
}
