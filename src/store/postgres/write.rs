//! Writes with Nova's semantics (`store::semantics`), each one transaction that first takes the
//! server's advisory lock, acknowledged once `COMMIT` returns (`synchronous_commit` on).

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::read::{NEWEST_BY_REQUEST, Position};
use super::{PgStore, db_error, lock_key};
use crate::model::{Action, Event, Server, ServerHistory};
use crate::store::{
    ActionStart, ActionWithEvents, Applied, EventFinish, EventStart, ImportCounts, Result,
    ServerFields, StoreError, Written, decode, decode_action_with_events, encode, encode_action,
    semantics,
};
use crate::timeutil::Micros;

/// New actions inserted per statement by an import.
const INSERT_BATCH: usize = 1000;

/// Runs `$body` (a `Result` expression that may `.await` and `?`) in a transaction holding the
/// server's write lock, then commits. An early `return` or error rolls back, which is right
/// for a retry that wrote nothing.
macro_rules! in_transaction {
    ($store:expr, $id:expr, |$tx:ident| $body:expr) => {
        $store.call(|mut client| async move {
            let transaction = client.transaction().await.map_err(db_error)?;
            transaction
                .execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key($id)])
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
}

impl PgStore {
    pub fn apply_upsert_server(&self, id: &Uuid, fields: ServerFields) -> Result<Applied<Server>> {
        in_transaction!(self, id, |tx| {
            let old = stored_server(tx, id).await?;
            let server = semantics::upserted_server(old.as_ref(), &fields);
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
        in_transaction!(self, id, |tx| {
            let mut server = stored_server(tx, id)
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

    pub fn apply_start_action(
        &self,
        server: &Uuid,
        start: ActionStart,
    ) -> Result<Applied<ActionWithEvents>> {
        in_transaction!(self, server, |tx| {
            if stored_server(tx, server).await?.is_none() {
                return Err(StoreError::ServerNotFound(*server));
            }
            if let Some((_, existing)) = newest_by_request(tx, server, &start.request_id).await? {
                if semantics::is_retry_of(&existing.0, &start) {
                    return Ok(Applied::committed(Written {
                        record: existing,
                        changed: false,
                    }));
                }
            }
            let action = semantics::started_action(&start);
            let seq = next_seqs(tx, 1).await?[0];
            insert_action(tx, server, seq, &action, &[]).await?;
            widen_lag(tx, server, 0, 0).await?;
            Ok(Applied::committed(Written {
                record: (action, Vec::new()),
                changed: true,
            }))
        })
    }

    pub fn apply_finish_action(
        &self,
        server: &Uuid,
        request_id: &str,
        finish_time: Micros,
        time_given: bool,
    ) -> Result<Applied<ActionWithEvents>> {
        in_transaction!(self, server, |tx| {
            let (at, (mut action, events), _) = action_for(tx, server, request_id, false).await?;
            let changed = semantics::finish_action(&mut action, finish_time, time_given);
            if changed {
                update_action(tx, server, at, &action, &events).await?;
                widen_lag(tx, server, lag_of(&action), lag_of(&action)).await?;
            }
            Ok(Applied::committed(Written {
                record: (action, events),
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
        self.write_events(server, &request_id, fallback, at, |_, events| {
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
        self.write_events(server, &request_id, fallback, at, |action, events| {
            semantics::finish_event(action, events, &finish)
        })
    }

    /// An event write: `edit` changes the action's events (and message) and says whether it
    /// changed anything; if so, an action found by its request id has `updated_at` moved to
    /// `at` (the fallback to the newest action leaves it alone, as Nova does).
    fn write_events(
        &self,
        server: &Uuid,
        request_id: &str,
        fallback: bool,
        at: Micros,
        edit: impl FnOnce(&mut Action, &mut Vec<Event>) -> Result<bool>,
    ) -> Result<Applied<ActionWithEvents>> {
        in_transaction!(self, server, |tx| {
            let (position, (mut action, mut events), by_request) =
                action_for(tx, server, request_id, fallback).await?;
            let changed = edit(&mut action, &mut events)?;
            if changed {
                if by_request {
                    action.updated_at = Some(at);
                    widen_lag(tx, server, lag_of(&action), lag_of(&action)).await?;
                }
                update_action(tx, server, position, &action, &events).await?;
            }
            Ok(Applied::committed(Written {
                record: (action, events),
                changed,
            }))
        })
    }

    /// Stores one server line in one transaction (see `store::embedded::import` for the
    /// matching rules, which are the same: idempotent, recording order kept).
    pub fn import_server(&self, history: &ServerHistory) -> Result<ImportCounts> {
        let id = &history.uuid;
        in_transaction!(self, id, |tx| {
            let known = stored_server(tx, id).await?.is_some();
            put_server(tx, id, &history.server).await?;
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
        in_transaction!(self, id, |tx| {
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

fn lag_of(action: &Action) -> i64 {
    action
        .updated_at
        .map_or(0, |u| u.saturating_sub(action.start_time))
}

async fn stored_server(tx: &Transaction<'_>, id: &Uuid) -> Result<Option<Server>> {
    let statement = tx
        .prepare_cached("SELECT record FROM servers WHERE instance_uuid = $1")
        .await
        .map_err(db_error)?;
    let row = tx.query_opt(&statement, &[id]).await.map_err(db_error)?;
    row.map(|r| decode(r.get(0))).transpose()
}

async fn put_server(tx: &Transaction<'_>, id: &Uuid, server: &Server) -> Result<()> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO servers (instance_uuid, record, deleted_at) VALUES ($1, $2, $3)
             ON CONFLICT (instance_uuid)
             DO UPDATE SET record = EXCLUDED.record, deleted_at = EXCLUDED.deleted_at",
        )
        .await
        .map_err(db_error)?;
    let deleted_at = server.deleted_at.filter(|_| server.deleted);
    tx.execute(&statement, &[id, &encode(server), &deleted_at])
        .await
        .map_err(db_error)?;
    Ok(())
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

async fn newest_by_request(
    tx: &Transaction<'_>,
    server: &Uuid,
    request_id: &str,
) -> Result<Option<(Position, ActionWithEvents)>> {
    let statement = tx
        .prepare_cached(NEWEST_BY_REQUEST)
        .await
        .map_err(db_error)?;
    let row = tx
        .query_opt(&statement, &[server, &request_id.as_bytes()])
        .await
        .map_err(db_error)?;
    row.map(|r| Ok(((r.get(0), r.get(1)), decode_action_with_events(r.get(2))?)))
        .transpose()
}

/// The action a write names: by request id or, with the fallback, the server's newest one;
/// `true` when found by its request id.
async fn action_for(
    tx: &Transaction<'_>,
    server: &Uuid,
    request_id: &str,
    fallback: bool,
) -> Result<(Position, ActionWithEvents, bool)> {
    if stored_server(tx, server).await?.is_none() {
        return Err(StoreError::ServerNotFound(*server));
    }
    if let Some((position, found)) = newest_by_request(tx, server, request_id).await? {
        return Ok((position, found, true));
    }
    let not_found = || StoreError::ActionNotFound {
        server: *server,
        request_id: request_id.to_string(),
    };
    if !fallback {
        return Err(not_found());
    }
    let statement = tx
        .prepare_cached(
            "SELECT start_time, seq, record FROM actions WHERE instance_uuid = $1
             ORDER BY start_time DESC, seq DESC LIMIT 1",
        )
        .await
        .map_err(db_error)?;
    match tx
        .query_opt(&statement, &[server])
        .await
        .map_err(db_error)?
    {
        Some(r) => Ok((
            (r.get(0), r.get(1)),
            decode_action_with_events(r.get(2))?,
            false,
        )),
        None => Err(not_found()),
    }
}

/// Stored actions an import may stand for, by start time and request id, each list in
/// recording order.
#[derive(Default)]
struct Stored(HashMap<StartAndRequest, Vec<(Position, Vec<u8>)>>);

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
        for (position, record) in candidates {
            if claimed.insert(*position) {
                return Ok(Some((*position, decode_action_with_events(record)?)));
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
            "SELECT start_time, seq, request_id, record FROM actions
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
            .push((position, row.get(3)));
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

async fn insert_action(
    tx: &Transaction<'_>,
    server: &Uuid,
    seq: i64,
    action: &Action,
    events: &[Event],
) -> Result<()> {
    insert_batch_at(tx, server, &[seq], &[(action, events)]).await
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
            "INSERT INTO actions (instance_uuid, start_time, seq, request_id, updated_at, record)
             SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bytea[], $5::bigint[], $6::bytea[])",
        )
        .await
        .map_err(db_error)?;
    let starts: Vec<i64> = batch.iter().map(|(a, _)| a.start_time).collect();
    let request_ids: Vec<&[u8]> = batch.iter().map(|(a, _)| a.request_id.as_bytes()).collect();
    let updated: Vec<Option<i64>> = batch.iter().map(|(a, _)| a.updated_at).collect();
    let records: Vec<Vec<u8>> = batch.iter().map(|(a, e)| encode_action(a, e)).collect();
    tx.execute(
        &statement,
        &[server, &starts, &seqs, &request_ids, &updated, &records],
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
            "UPDATE actions SET updated_at = $4, record = $5
             WHERE instance_uuid = $1 AND start_time = $2 AND seq = $3",
        )
        .await
        .map_err(db_error)?;
    tx.execute(
        &statement,
        &[
            server,
            &start_time,
            &seq,
            &action.updated_at,
            &encode_action(action, events),
        ],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Stretches the server's lag bounds to cover lags from `lo` to `hi` (before any action they
/// must cover is visible: in the same transaction).
async fn widen_lag(tx: &Transaction<'_>, server: &Uuid, lo: i64, hi: i64) -> Result<()> {
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
