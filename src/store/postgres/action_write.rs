//! Writes to one action (start, finish, event start and finish), the hot path of a busy cloud:
//! two round trips each. Statements are pipelined (sent together, run in order by the server):
//! the first trip begins, takes the locks (`write.rs` says which) and reads the server and the
//! action; the second writes and commits. Lock order and semantics are those of `write.rs`.

use deadpool_postgres::Client;
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::read::{NEWEST_BY_REQUEST, Position, columns, whole};
use super::write::{Lags, lag_of, request_lock, widened};
use super::{PgStore, db_error, lock_key};
use crate::model::{Action, Event, Server};
use crate::store::{
    ActionStart, ActionWithEvents, Applied, Result, StoreError, Written, decode_server, semantics,
};
use crate::timeutil::Micros;

/// What the first round trip found.
struct Opened {
    server: Server,
    lags: Lags,
    /// The newest action with the request id, its row locked.
    action: Option<(Position, ActionWithEvents)>,
}

/// The statements of an action write, prepared once per connection.
struct Statements {
    begin: Statement,
    server_lock: Statement,
    request_lock: Statement,
    server: Statement,
    action: Statement,
}

async fn statements(client: &Client) -> Result<Statements> {
    let action = format!("{NEWEST_BY_REQUEST} FOR UPDATE");
    let (begin, server_lock, request_lock, server, action) = tokio::join!(
        biased;
        client.prepare_cached("BEGIN"),
        client.prepare_cached("SELECT pg_advisory_xact_lock_shared($1)"),
        client.prepare_cached("SELECT pg_advisory_xact_lock($1, $2)"),
        client.prepare_cached(
            "SELECT record, lag_min, lag_max FROM servers WHERE instance_uuid = $1"
        ),
        client.prepare_cached(&action),
    );
    Ok(Statements {
        begin: begin.map_err(db_error)?,
        server_lock: server_lock.map_err(db_error)?,
        request_lock: request_lock.map_err(db_error)?,
        server: server.map_err(db_error)?,
        action: action.map_err(db_error)?,
    })
}

/// Round one: begin, the server's shared lock, the request id's lock, the server, the action.
async fn open(client: &Client, server: &Uuid, request_id: &str) -> Result<Opened> {
    let st = statements(client).await?;
    let (high, low) = request_lock(server, request_id);
    let rid = request_id.as_bytes();
    let key = lock_key(server);
    let lock_params: [&(dyn ToSql + Sync); 1] = [&key];
    let request_params: [&(dyn ToSql + Sync); 2] = [&high, &low];
    let server_params: [&(dyn ToSql + Sync); 1] = [server];
    let action_params: [&(dyn ToSql + Sync); 2] = [server, &rid];
    let (begun, locked, request_locked, found_server, found_action) = tokio::join!(
        biased;
        client.execute(&st.begin, &[]),
        client.execute(&st.server_lock, &lock_params),
        client.execute(&st.request_lock, &request_params),
        client.query_opt(&st.server, &server_params),
        client.query_opt(&st.action, &action_params),
    );
    begun.map_err(db_error)?;
    let read = async {
        locked.map_err(db_error)?;
        request_locked.map_err(db_error)?;
        let Some(row) = found_server.map_err(db_error)? else {
            return Err(StoreError::ServerNotFound(*server));
        };
        let action = match found_action.map_err(db_error)? {
            Some(r) => Some(((r.get(0), r.get(1)), whole(&r, 2)?)),
            None => None,
        };
        Ok(Opened {
            server: decode_server(row.get(0))?,
            lags: (row.get(1), row.get(2)),
            action,
        })
    };
    let opened = read.await;
    if opened.is_err() {
        rollback(client).await;
    }
    opened
}

/// Ends a transaction that changed nothing (a retry) or failed.
async fn rollback(client: &Client) {
    // A connection that cannot even roll back is broken: the pool drops it when it is closed.
    let _ = client.batch_execute("ROLLBACK").await;
}

/// What round two writes.
#[derive(Clone, Copy)]
enum Change<'a> {
    Insert(&'a Action),
    Update(Position, &'a Action, &'a [Event]),
}

/// Round two: the action written, the lag bounds widened if they must be, committed.
async fn commit(
    client: &Client,
    server: &Uuid,
    change: Change<'_>,
    lags: Lags,
    lag: i64,
) -> Result<()> {
    let (write, widen, commit) = tokio::join!(
        client.prepare_cached(match change {
            Change::Insert(_) => {
                "INSERT INTO actions (instance_uuid, start_time, seq, request_id, updated_at, action, events)
                 VALUES ($1, $2, nextval('action_seq'), $3, $4, $5, $6)"
            }
            Change::Update(..) => {
                "UPDATE actions SET updated_at = $4, action = $5, events = $6
                 WHERE instance_uuid = $1 AND start_time = $2 AND seq = $3"
            }
        }),
        client.prepare_cached(
            "UPDATE servers SET lag_min = LEAST(lag_min, $2), lag_max = GREATEST(lag_max, $3)
             WHERE instance_uuid = $1"
        ),
        client.prepare_cached("COMMIT"),
    );
    let (write, widen, commit) = (
        write.map_err(db_error)?,
        widen.map_err(db_error)?,
        commit.map_err(db_error)?,
    );
    let wider = widened(lags, lag);
    let (action, events) = match change {
        Change::Insert(action) => (action, &[][..]),
        Change::Update(_, action, events) => (action, events),
    };
    let (action_column, events_column) = columns(action, events);
    let rid = action.request_id.as_bytes();
    let (start_time, seq) = match change {
        Change::Insert(action) => (action.start_time, 0),
        Change::Update(position, ..) => position,
    };
    // $3 names the row: a new action's request id (its seq comes from the sequence), or an
    // existing action's seq.
    let third: &(dyn ToSql + Sync) = match change {
        Change::Insert(_) => &rid,
        Change::Update(..) => &seq,
    };
    let params: [&(dyn ToSql + Sync); 6] = [
        server,
        &start_time,
        third,
        &action.updated_at,
        &action_column,
        &events_column,
    ];
    let (written, widened_ok, committed) = tokio::join!(
        biased;
        client.execute(&write, &params),
        maybe_widen(client, &widen, server, wider),
        client.execute(&commit, &[]),
    );
    let outcome = written
        .map_err(db_error)
        .and(widened_ok)
        .and(committed.map_err(db_error).map(|_| ()));
    if outcome.is_err() {
        rollback(client).await;
    }
    outcome.map(|_| ())
}

async fn maybe_widen(
    client: &Client,
    widen: &Statement,
    server: &Uuid,
    wider: Option<Lags>,
) -> Result<u64> {
    match wider {
        Some((lo, hi)) => client
            .execute(widen, &[server, &lo, &hi])
            .await
            .map_err(db_error),
        None => Ok(0),
    }
}

/// The answer of a write that changed nothing; its transaction is rolled back.
async fn unchanged(
    client: &Client,
    record: ActionWithEvents,
    server: Server,
) -> Result<Applied<ActionWithEvents>> {
    rollback(client).await;
    Ok(Applied::committed(Written {
        record,
        changed: false,
    })
    .seen_by(&server))
}

impl PgStore {
    pub fn apply_start_action(
        &self,
        server: &Uuid,
        start: ActionStart,
    ) -> Result<Applied<ActionWithEvents>> {
        self.call(|client| async move {
            let opened = open(&client, server, &start.request_id).await?;
            if let Some((_, existing)) = opened.action {
                if semantics::is_retry_of(&existing.0, &start) {
                    return unchanged(&client, existing, opened.server).await;
                }
            }
            let action = semantics::started_action(&start);
            commit(&client, server, Change::Insert(&action), opened.lags, 0).await?;
            Ok(Applied::committed(Written {
                record: (action, Vec::new()),
                changed: true,
            })
            .seen_by(&opened.server))
        })
    }

    pub fn apply_finish_action(
        &self,
        server: &Uuid,
        request_id: &str,
        finish_time: Micros,
        time_given: bool,
    ) -> Result<Applied<ActionWithEvents>> {
        self.edit_action(server, request_id, false, None, |action, _| {
            Ok(semantics::finish_action(action, finish_time, time_given))
        })
    }

    /// A write that edits an existing action: `edit` changes it and says whether it changed
    /// anything; if so, and the action was found by its request id, `updated_at` moves to
    /// `bump_to` (the fallback to the newest action leaves it alone, as Nova does).
    pub(super) fn edit_action(
        &self,
        server: &Uuid,
        request_id: &str,
        fallback: bool,
        bump_to: Option<Micros>,
        edit: impl FnOnce(&mut Action, &mut Vec<Event>) -> Result<bool>,
    ) -> Result<Applied<ActionWithEvents>> {
        self.call(|client| async move {
            let opened = open(&client, server, request_id).await?;
            let (position, (mut action, mut events), by_request) = match opened.action {
                Some((position, found)) => (position, found, true),
                None if fallback => match newest_action(&client, server).await {
                    Ok(Some((position, found))) => (position, found, false),
                    Ok(None) => {
                        rollback(&client).await;
                        return Err(not_found(server, request_id));
                    }
                    Err(e) => {
                        rollback(&client).await;
                        return Err(e);
                    }
                },
                None => {
                    rollback(&client).await;
                    return Err(not_found(server, request_id));
                }
            };
            let changed = match edit(&mut action, &mut events) {
                Ok(changed) => changed,
                Err(e) => {
                    rollback(&client).await;
                    return Err(e);
                }
            };
            if !changed {
                return unchanged(&client, (action, events), opened.server).await;
            }
            if let (true, Some(at)) = (by_request, bump_to) {
                action.updated_at = Some(at);
            }
            let change = Change::Update(position, &action, &events);
            commit(&client, server, change, opened.lags, lag_of(&action)).await?;
            Ok(Applied::committed(Written {
                record: (action, events),
                changed: true,
            })
            .seen_by(&opened.server))
        })
    }
}

fn not_found(server: &Uuid, request_id: &str) -> StoreError {
    StoreError::ActionNotFound {
        server: *server,
        request_id: request_id.to_string(),
    }
}

/// The server's newest action, its row locked (the fallback of event writes).
async fn newest_action(
    client: &Client,
    server: &Uuid,
) -> Result<Option<(Position, ActionWithEvents)>> {
    let statement = client
        .prepare_cached(
            "SELECT start_time, seq, action, events FROM actions WHERE instance_uuid = $1
             ORDER BY start_time DESC, seq DESC LIMIT 1 FOR UPDATE",
        )
        .await
        .map_err(db_error)?;
    match client
        .query_opt(&statement, &[server])
        .await
        .map_err(db_error)?
    {
        Some(r) => Ok(Some(((r.get(0), r.get(1)), whole(&r, 2)?))),
        None => Ok(None),
    }
}
