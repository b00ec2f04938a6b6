//! Writes with Nova's semantics (`store::semantics`), each one transaction, acknowledged once
//! `COMMIT` returns (`synchronous_commit` on).
//!
//! Locks, all held to the end of the transaction, taken in this order (so no two writers can
//! wait on each other in a cycle):
//! 1. the server's advisory lock: exclusive for what changes the server record or the whole
//!    history (upsert, soft delete, import, purge), shared for action and event writes, so a
//!    purge or an import waits for the writes in flight and they for it, while writes to
//!    different actions of one server run side by side and share PostgreSQL's WAL flushes;
//! 2. for an action start, an advisory lock on (server, request id): a retry racing the write
//!    it repeats finds it instead of adding a second action;
//! 3. for a write to an existing action, that action's row (`FOR UPDATE`): its record is read,
//!    changed and written back by one writer at a time.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::read::{Position, columns, server_record, whole};
use super::{PgStore, db_error, lock_key};
use crate::model::{Action, Event, Server, ServerHistory};
use crate::store::{
    ActionWithEvents, Applied, EventFinish, EventStart, ImportCounts, Result, ServerFields,
    StoreError, Written, encode_server, semantics,
};
use crate::timeutil::Micros;

/// New actions inserted per statement by an import.
const INSERT_BATCH: usize = 1000;

/// Runs `$body` (a `Result` expression that may `.await` and `?`) in a transaction holding the
/// server's advisory lock (`exclusive` or `shared`, see above), then commits. An early
/// `return` or error rolls back, which is right for a retry that wrote nothing.
macro_rules! in_transaction {
    ($store:expr, $id:expr, $mode:ident, |$tx:ident| $body:expr) => {
        $store.call(|mut client| async move {
            let transaction = client.transaction().await.map_err(db_error)?;
            transaction
                .execute(in_transaction!(@lock $mode), &[&lock_key($id)])
                .await
                .map_err(db_error)?;
            let value: Result<_> = {
                let $tx = &transaction;
                $body
            };
            let value = value?;
            transaction.commit().await.map_err(db_error)?;
            Ok(value)
        })
    };
    (@lock exclusive) => {
        "SELECT pg_advisory_xact_lock($1)"
    };
    (@lock shared) => {
        "SELECT pg_advisory_xact_lock_shared($1)"
    };
}

impl PgStore {
    pub fn apply_upsert_server(&self, id: &Uuid, fields: ServerFields) -> Result<Applied<Server>> {
        in_transaction!(self, id, exclusive, |tx| {
            let old = server_record(tx, id).await?;
            let seq = match &old {
                Some(old) => old.seq,
                None => next_server_seq(tx).await?,
            };
            let server = semantics::upserted_server(old.as_ref(), &fields, seq);
            let changed = old.as_ref() != Some(&server);
            if changed {
                put_server(tx, id, &server).await?;
            }
            Ok(Applied::committed(Written {
                record: server,
                changed,
            }))
        })
    }

    pub fn apply_soft_delete_server(&self, id: &Uuid, at: Micros) -> Result<Applied<Server>> {
        in_transaction!(self, id, exclusive, |tx| {
            let mut server = server_record(tx, id)
                .await?
                .ok_or(StoreError::ServerNotFound(*id))?;
            let changed = semantics::soft_delete(&mut server, at);
            if changed {
                put_server(tx, id, &server).await?;
            }
            Ok(Applied::committed(Written {
                record: server,
                changed,
            }))
        })
    }

    pub fn apply_start_event(
        &self,
        server: &Uuid,
        start: EventStart,
    ) -> Result<Applied<ActionWithEvents>> {
        let (request_id, fallback, at) = (
            start.request_id.clone(),
            start.fallback_to_last_action,
            start.start_time,
        );
        self.edit_action(server, &request_id, fallback, Some(at), |_, events| {
            Ok(semantics::start_event(events, &start))
        })
    }

    pub fn apply_finish_event(
        &self,
        server: &Uuid,
        finish: EventFinish,
    ) -> Result<Applied<ActionWithEvents>> {
        let (request_id, fallback, at) = (
            finish.request_id.clone(),
            finish.fallback_to_last_action,
            finish.finish_time,
        );
        self.edit_action(server, &request_id, fallback, Some(at), |action, events| {
            semantics::finish_event(action, events, &finish)
        })
    }

    /// Stores one server line in one transaction (see `store::embedded::import` for the
    /// matching rules, which are the same: idempotent, recording order kept).
    pub fn import_server(&self, history: &ServerHistory) -> Result<ImportCounts> {
        let id = &history.uuid;
        in_transaction!(self, id, exclusive, |tx| {
            let old = server_record(tx, id).await?;
            let known = old.is_some();
            let seq = match &old {
                Some(old) => old.seq,
                None => next_server_seq(tx).await?,
            };
            let server = semantics::imported_server(old.as_ref(), &history.server, seq);
            put_server(tx, id, &server).await?;
            let fresh = !known && !has_actions(tx, id).await?;
            let mut counts = ImportCounts {
                servers: 1,
                ..ImportCounts::default()
            };
            let mut claimed = HashSet::new();
            let mut new = Vec::new();
            for chunk in history.actions.chunks(INSERT_BATCH) {
                let mut stored = match fresh {
                    true => Stored::default(),
                    false => stored_at(tx, id, chunk).await?,
                };
                for (action, events) in chunk {
                    match stored.claim(action, &mut claimed)? {
                        Some((_, old)) if old.0 == *action && old.1 == *events => {
                            counts.unchanged += 1;
                            continue;
                        }
                        Some((position, _)) => {
                            update_action(tx, id, position, action, events).await?;
                        }
                        None => new.push((action, events.as_slice())),
                    }
                    counts.actions += 1;
                    counts.events += events.len() as u64;
                }
            }
            let lags = history.actions.iter().map(|(a, _)| lag_of(a));
            if let (Some(hi), Some(lo)) = (lags.clone().max(), lags.min()) {
                widen_lag(tx, id, lo, hi).await?;
            }
            for batch in new.chunks(INSERT_BATCH) {
                insert_batch(tx, id, batch).await?;
            }
            Ok(counts)
        })
    }

    /// Removes a server and its whole history in one transaction: readers see all of it or
    /// none, and nothing is left half done for a crash to leave behind.
    pub fn purge_server(&self, id: &Uuid) -> Result<Option<u64>> {
        in_transaction!(self, id, exclusive, |tx| {
            let actions = tx
                .execute("DELETE FROM actions WHERE instance_uuid = $1", &[id])
                .await
                .map_err(db_error)?;
            let servers = tx
                .execute("DELETE FROM servers WHERE instance_uuid = $1", &[id])
                .await
                .map_err(db_error)?;
            Ok((actions + servers > 0).then_some(actions))
        })
    }

    pub fn purge_deleted_before(&self, cutoff: Micros) -> Result<(u64, u64)> {
        let doomed: Vec<Uuid> = self.call(|client| async move {
            let rows = client
                .query(
                    "SELECT instance_uuid FROM servers WHERE deleted_at < $1 ORDER BY instance_uuid",
                    &[&cutoff],
                )
                .await
                .map_err(db_error)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        let mut actions = 0;
        for id in &doomed {
            actions += self.purge_server(id)?.unwrap_or(0);
        }
        Ok((doomed.len() as u64, actions))
    }
}

/// The smallest power of two at least `n` (0 for 0 or less, saturating).
fn round_up(n: i64) -> i64 {
    match n {
        ..=0 => 0,
        _ => i64::try_from((n as u64).next_power_of_two()).unwrap_or(i64::MAX),
    }
}

/// The advisory lock of one request id on one server (two 32-bit keys: a key space apart from
/// the servers' 64-bit keys). A stable hash, so that every node and version agrees.
pub(super) fn request_lock(server: &Uuid, request_id: &str) -> (i32, i32) {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(server.as_bytes())
        .chain_update(request_id.as_bytes())
        .finalize();
    let word = |i: usize| i32::from_be_bytes(digest[i..i + 4].try_into().expect("4 bytes"));
    (word(0), word(4))
}

pub(super) fn lag_of(action: &Action) -> i64 {
    action
        .updated_at
        .map_or(0, |u| u.saturating_sub(action.start_time))
}

async fn put_server(tx: &Transaction<'_>, id: &Uuid, server: &Server) -> Result<()> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO servers (instance_uuid, record, deleted_at, project_id, created_key, seq)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (instance_uuid)
             DO UPDATE SET record = EXCLUDED.record, deleted_at = EXCLUDED.deleted_at,
                project_id = EXCLUDED.project_id, created_key = EXCLUDED.created_key,
                seq = EXCLUDED.seq",
        )
        .await
        .map_err(db_error)?;
    let deleted_at = server.deleted_at.filter(|_| server.deleted);
    let (created, seq) = server.list_position();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
        id,
        &encode_server(server),
        &deleted_at,
        &server.project_id,
        &created,
        &(seq as i64),
    ];
    tx.execute(&statement, &params).await.map_err(db_error)?;
    Ok(())
}

/// A registration number for a new server (`Server::seq`).
async fn next_server_seq(tx: &Transaction<'_>) -> Result<u64> {
    let row = tx
        .query_one("SELECT nextval('server_seq')", &[])
        .await
        .map_err(db_error)?;
    Ok(row.get::<_, i64>(0) as u64)
}

async fn has_actions(tx: &Transaction<'_>, id: &Uuid) -> Result<bool> {
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM actions WHERE instance_uuid = $1)",
            &[id],
        )
        .await
        .map_err(db_error)?;
    Ok(row.get(0))
}

/// Stored actions an import may stand for, by start time and request id, each list in
/// recording order.
#[derive(Default)]
struct Stored(HashMap<StartAndRequest, Vec<(Position, ActionWithEvents)>>);

/// `(start_time, request_id)`: what identifies an imported action.
type StartAndRequest = (i64, Vec<u8>);

impl Stored {
    /// The stored action an imported one stands for: same start time and request id, the
    /// first in recording order not already matched by an earlier action of the same line.
    fn claim(
        &mut self,
        action: &Action,
        claimed: &mut HashSet<Position>,
    ) -> Result<Option<(Position, ActionWithEvents)>> {
        let key = (action.start_time, action.request_id.as_bytes().to_vec());
        let Some(candidates) = self.0.get(&key) else {
            return Ok(None);
        };
        for (position, stored) in candidates {
            if claimed.insert(*position) {
                return Ok(Some((*position, stored.clone())));
            }
        }
        Ok(None)
    }
}

/// What is stored at the start times of a chunk of an import line: one query a chunk.
async fn stored_at(
    tx: &Transaction<'_>,
    server: &Uuid,
    chunk: &[ActionWithEvents],
) -> Result<Stored> {
    let statement = tx
        .prepare_cached(
            "SELECT start_time, seq, request_id, action, events FROM actions
             WHERE instance_uuid = $1 AND start_time = ANY($2) ORDER BY start_time, seq",
        )
        .await
        .map_err(db_error)?;
    let starts: Vec<i64> = chunk.iter().map(|(a, _)| a.start_time).collect();
    let rows = tx
        .query(&statement, &[server, &starts])
        .await
        .map_err(db_error)?;
    let mut stored = Stored::default();
    for row in rows {
        let key = (row.get::<_, i64>(0), row.get::<_, Vec<u8>>(2));
        let position: Position = (row.get(0), row.get(1));
        stored
            .0
            .entry(key)
            .or_default()
            .push((position, whole(&row, 3)?));
    }
    Ok(stored)
}

/// `n` new positions in recording order.
async fn next_seqs(tx: &Transaction<'_>, n: usize) -> Result<Vec<i64>> {
    let rows = tx
        .query(
            "SELECT nextval('action_seq') FROM generate_series(1, $1::integer)",
            &[&i32::try_from(n).unwrap_or(i32::MAX)],
        )
        .await
        .map_err(db_error)?;
    let mut seqs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    seqs.sort_unstable();
    Ok(seqs)
}

async fn insert_batch(
    tx: &Transaction<'_>,
    server: &Uuid,
    batch: &[(&Action, &[Event])],
) -> Result<()> {
    let seqs = next_seqs(tx, batch.len()).await?;
    insert_batch_at(tx, server, &seqs, batch).await
}

async fn insert_batch_at(
    tx: &Transaction<'_>,
    server: &Uuid,
    seqs: &[i64],
    batch: &[(&Action, &[Event])],
) -> Result<()> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO actions (instance_uuid, start_time, seq, request_id, updated_at, action, events)
             SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bytea[], $5::bigint[], $6::bytea[], $7::bytea[])",
        )
        .await
        .map_err(db_error)?;
    let starts: Vec<i64> = batch.iter().map(|(a, _)| a.start_time).collect();
    let request_ids: Vec<&[u8]> = batch.iter().map(|(a, _)| a.request_id.as_bytes()).collect();
    let updated: Vec<Option<i64>> = batch.iter().map(|(a, _)| a.updated_at).collect();
    let (actions, events): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
        batch.iter().map(|(a, e)| columns(a, e)).unzip();
    tx.execute(
        &statement,
        &[
            server,
            &starts,
            &seqs,
            &request_ids,
            &updated,
            &actions,
            &events,
        ],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

async fn update_action(
    tx: &Transaction<'_>,
    server: &Uuid,
    (start_time, seq): Position,
    action: &Action,
    events: &[Event],
) -> Result<()> {
    let statement = tx
        .prepare_cached(
            "UPDATE actions SET updated_at = $4, action = $5, events = $6
             WHERE instance_uuid = $1 AND start_time = $2 AND seq = $3",
        )
        .await
        .map_err(db_error)?;
    let (action_column, events_column) = columns(action, events);
    tx.execute(
        &statement,
        &[
            server,
            &start_time,
            &seq,
            &action.updated_at,
            &action_column,
            &events_column,
        ],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// A server's lag bounds: `(lag_min, lag_max)`.
pub(super) type Lags = (i64, i64);

/// The bounds `lags` must widen to, to cover `lag`; None when they already do. Widened in
/// powers of two: looser bounds cost a little more scanning, but the server row is then
/// written (and locked) a few dozen times in its life, not by every other write.
pub(super) fn widened((lo, hi): Lags, lag: i64) -> Option<Lags> {
    let (low, high) = rounded(lag, lag);
    let wider = (lo.min(low), hi.max(high));
    (wider != (lo, hi)).then_some(wider)
}

/// Lags from `lo` to `hi`, widened outwards to powers of two.
fn rounded(lo: i64, hi: i64) -> Lags {
    (-round_up(lo.saturating_neg()), round_up(hi))
}

/// Stretches the server's lag bounds to cover lags from `lo` to `hi` (before any action they
/// must cover is visible: in the same transaction).
async fn widen_lag(tx: &Transaction<'_>, server: &Uuid, lo: i64, hi: i64) -> Result<()> {
    let (lo, hi) = rounded(lo, hi);
    let statement = tx
        .prepare_cached(
            "UPDATE servers SET lag_min = LEAST(lag_min, $2), lag_max = GREATEST(lag_max, $3)
             WHERE instance_uuid = $1 AND (lag_min > $2 OR lag_max < $3)",
        )
        .await
        .map_err(db_error)?;
    tx.execute(&statement, &[server, &lo, &hi])
        .await
        .map_err(db_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_bounds_widen_in_powers_of_two_and_only_when_needed() {
        assert_eq!(widened((0, 0), 0), None);
        assert_eq!(widened((0, 0), 5), Some((0, 8)));
        assert_eq!(widened((0, 8), 8), None);
        assert_eq!(widened((0, 8), 9), Some((0, 16)));
        assert_eq!(widened((0, 8), -3), Some((-4, 8)));
        assert_eq!(widened((-4, 8), -4), None);
        assert_eq!(widened((0, 0), i64::MAX), Some((0, i64::MAX)));
        assert_eq!(widened((0, 0), i64::MIN), Some((-i64::MAX, 0)));
    }

    #[test]
    fn request_locks_are_stable_across_processes() {
        let server = Uuid::from_u128(1);
        assert_eq!(
            request_lock(&server, "req-1"),
            request_lock(&server, "req-1")
        );
        assert_ne!(
            request_lock(&server, "req-1"),
            request_lock(&server, "req-2")
        );
    }
}
