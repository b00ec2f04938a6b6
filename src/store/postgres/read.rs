//! The questions the API asks, each one index range scan (see `tests/integration/postgres.rs`
//! for the plans).

use deadpool_postgres::{GenericClient, Object};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{PgStore, db_error};
use crate::model::{Action, ActionView, Event, Server, ServerView};
use crate::store::codec::decode_view;
use crate::store::keys::{self, ActionKey};
use crate::store::{
    ActionWithEvents, After, Cursor, PageEnd, PageQuery, Result, StoreError, decode, decode_server,
    encode,
};
use crate::timeutil::Micros;

/// A position in a history: `(start_time, seq)`.
pub(super) type Position = (i64, i64);

pub(super) fn position_of(key: &ActionKey) -> Result<Position> {
    let (_, start_time, seq) =
        keys::decode_action_key(key).ok_or_else(|| StoreError::Corrupt("cursor".into()))?;
    Ok((start_time, seq as i64))
}

pub(super) fn key_of(server: &Uuid, row: &Row) -> ActionKey {
    keys::action_key(server, row.get(0), row.get::<_, i64>(1) as u64)
}

/// An action and its events from the columns `from` and `from + 1` of a row.
pub(super) fn whole(row: &Row, from: usize) -> Result<ActionWithEvents> {
    Ok((decode(row.get(from))?, decode(row.get(from + 1))?))
}

/// The two columns an action is stored in.
pub(super) fn columns(action: &Action, events: &[Event]) -> (Vec<u8>, Vec<u8>) {
    (encode(action), encode(&events))
}

/// The newest action with this request id: `(start_time, seq, action, events)`.
pub const NEWEST_BY_REQUEST: &str = "SELECT start_time, seq, action, events FROM actions
     WHERE instance_uuid = $1 AND request_id = $2
     ORDER BY start_time DESC, seq DESC LIMIT 1";

impl PgStore {
    pub fn server(&self, id: &Uuid) -> Result<Option<Server>> {
        self.call(|client| read_server(client, id))
    }

    pub async fn fetch_server(&self, id: &Uuid) -> Result<Option<Server>> {
        self.call_async(|client| read_server(client, id)).await
    }

    pub fn list_page(
        &self,
        server: &Uuid,
        query: &PageQuery<'_>,
        visit: impl FnMut(&ActionView<'_>),
    ) -> Result<PageEnd> {
        let rows = self.call(|client| read_page(client, server, query))?;
        visit_rows(server, &rows, visit)
    }

    /// A list page that only a caller allowed to see the server may have: `check` is given the
    /// server record (None when there is none) before anything of the history is handed out.
    /// A plain page (no marker, no time filter: the common case) reads the server and the page
    /// in one round trip.
    pub async fn fetch_checked_page<E: From<StoreError>>(
        &self,
        server: &Uuid,
        query: &PageQuery<'_>,
        check: impl FnOnce(Option<&Server>) -> std::result::Result<(), E>,
        visit: impl FnMut(&ActionView<'_>),
    ) -> std::result::Result<PageEnd, E> {
        let plain =
            matches!(query.after, After::Start) && query.since.is_none() && query.before.is_none();
        let (found, prefetched) = self
            .call_async(|client| read_server_and_plain_page(client, server, query, plain))
            .await?;
        check(found.as_ref())?;
        let rows = match prefetched {
            Some(rows) if rows.is_empty() => {
                self.call_async(|client| async move { unless_purged(&client, server, rows).await })
                    .await?
            }
            Some(rows) => rows,
            None => {
                self.call_async(|client| read_page(client, server, query))
                    .await?
            }
        };
        Ok(visit_rows(server, &rows, visit)?)
    }

    pub fn show(
        &self,
        server: &Uuid,
        request_id: &str,
        with_events: bool,
    ) -> Result<Option<(Action, Vec<Event>)>> {
        let row = self.call(|client| read_action(client, server, request_id))?;
        shown(row, with_events)
    }

    pub async fn fetch_action(
        &self,
        server: &Uuid,
        request_id: &str,
        with_events: bool,
    ) -> Result<Option<(Action, Vec<Event>)>> {
        let row = self
            .call_async(|client| read_action(client, server, request_id))
            .await?;
        shown(row, with_events)
    }

    pub fn history_chunk(
        &self,
        server: &Uuid,
        after: Option<&ActionKey>,
        max: usize,
    ) -> Result<Vec<(ActionKey, ActionWithEvents)>> {
        let after = after.map(position_of).transpose()?;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = self.call(|client| async move {
            let (sql, params): (&str, Vec<&(dyn ToSql + Sync)>) = match &after {
                None => (
                    "SELECT start_time, seq, action, events FROM actions WHERE instance_uuid = $1
                     ORDER BY start_time, seq LIMIT $2",
                    vec![server, &limit],
                ),
                Some((start, seq)) => (
                    "SELECT start_time, seq, action, events FROM actions
                     WHERE instance_uuid = $1 AND (start_time, seq) > ($3, $4)
                     ORDER BY start_time, seq LIMIT $2",
                    vec![server, &limit, start, seq],
                ),
            };
            let statement = client.prepare_cached(sql).await.map_err(db_error)?;
            client.query(&statement, &params).await.map_err(db_error)
        })?;
        rows.iter()
            .map(|row| Ok((key_of(server, row), whole(row, 2)?)))
            .collect()
    }

    pub fn next_server_id(&self, after: Option<&Uuid>) -> Result<Option<(Uuid, Server)>> {
        let row = self.call(|client| async move {
            let (sql, params): (&str, Vec<&(dyn ToSql + Sync)>) = match &after {
                None => (
                    "SELECT instance_uuid, record FROM servers ORDER BY instance_uuid LIMIT 1",
                    vec![],
                ),
                Some(id) => (
                    "SELECT instance_uuid, record FROM servers WHERE instance_uuid > $1
                     ORDER BY instance_uuid LIMIT 1",
                    vec![id],
                ),
            };
            let statement = client.prepare_cached(sql).await.map_err(db_error)?;
            client
                .query_opt(&statement, &params)
                .await
                .map_err(db_error)
        })?;
        row.map(|row| Ok((row.get(0), decode_server(row.get(1))?)))
            .transpose()
    }
}

/// Servers in listing order (Nova's `created_at desc, id desc`) after a position, of one
/// project or all: each a backward scan of one of the v2 listing indexes.
pub fn listing_sql(project: bool, after: bool) -> &'static str {
    match (project, after) {
        (false, false) => {
            "SELECT instance_uuid, record FROM servers
             ORDER BY created_key DESC, seq DESC, instance_uuid DESC LIMIT $1"
        }
        (false, true) => {
            "SELECT instance_uuid, record FROM servers
             WHERE (created_key, seq, instance_uuid) < ($2, $3, $4)
             ORDER BY created_key DESC, seq DESC, instance_uuid DESC LIMIT $1"
        }
        (true, false) => {
            "SELECT instance_uuid, record FROM servers WHERE project_id = $2
             ORDER BY created_key DESC, seq DESC, instance_uuid DESC LIMIT $1"
        }
        (true, true) => {
            "SELECT instance_uuid, record FROM servers WHERE project_id = $2
                AND (created_key, seq, instance_uuid) < ($3, $4, $5)
             ORDER BY created_key DESC, seq DESC, instance_uuid DESC LIMIT $1"
        }
    }
}

impl PgStore {
    /// Servers in listing order after `after`, of `project` or of all projects, that `admit`
    /// accepts, until `limit` are found or the listing ends: pages of rows read from one of
    /// the listing indexes, filtered here (Nova's name filter is a Python regex, not SQL's).
    pub fn find_servers(
        &self,
        project: Option<&str>,
        after: Option<&keys::ServerPosition>,
        limit: usize,
        admit: &dyn Fn(&ServerView<'_>) -> bool,
    ) -> Result<Vec<(Uuid, Server)>> {
        let batch = limit.clamp(64, 1024);
        let mut found = Vec::with_capacity(limit.min(1000));
        let mut after = after.copied();
        loop {
            let rows = self.listed_rows(project, after.as_ref(), batch)?;
            for (id, server) in &rows {
                let (created, seq) = server.list_position();
                after = Some((created, seq, *id));
            }
            let exhausted = rows.len() < batch;
            for (id, server) in rows {
                if found.len() == limit {
                    return Ok(found);
                }
                if admit(&server.view()) {
                    found.push((id, server));
                }
            }
            if exhausted || found.len() == limit {
                return Ok(found);
            }
        }
    }

    fn listed_rows(
        &self,
        project: Option<&str>,
        after: Option<&keys::ServerPosition>,
        max: usize,
    ) -> Result<Vec<(Uuid, Server)>> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let after = after.map(|&(created, seq, id)| (created, seq as i64, id));
        let rows = self.call(|client| async move {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&limit];
            if let Some(project) = &project {
                params.push(project);
            }
            if let Some((created, seq, id)) = &after {
                params.extend([created as &(dyn ToSql + Sync), seq, id]);
            }
            let sql = listing_sql(project.is_some(), after.is_some());
            let statement = client.prepare_cached(sql).await.map_err(db_error)?;
            client.query(&statement, &params).await.map_err(db_error)
        })?;
        rows.iter()
            .map(|row| Ok((row.get(0), decode_server(row.get(1))?)))
            .collect()
    }

    /// A named value kept with the data (see `Store::meta`).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        let row = self.call(|client| async move {
            client
                .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
                .await
                .map_err(db_error)
        })?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Sets a named value (committed, so durable).
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.call(|client| async move {
            client
                .execute(
                    "INSERT INTO meta (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    &[&key, &value],
                )
                .await
                .map_err(db_error)
        })?;
        Ok(())
    }

    /// Where `id` sorts in listings (a marker), None when there is no such server.
    pub fn server_position(&self, id: &Uuid) -> Result<Option<keys::ServerPosition>> {
        Ok(self.server(id)?.map(|s| {
            let (created, seq) = s.list_position();
            (created, seq, *id)
        }))
    }
}

const SERVER_BY_ID: &str = "SELECT record FROM servers WHERE instance_uuid = $1";

/// The server, and for a plain page the page too, pipelined on one connection.
async fn read_server_and_plain_page(
    client: Object,
    server: &Uuid,
    query: &PageQuery<'_>,
    plain: bool,
) -> Result<(Option<Server>, Option<Vec<Row>>)> {
    if !plain {
        return Ok((server_record(&client, server).await?, None));
    }
    let by_id = client
        .prepare_cached(SERVER_BY_ID)
        .await
        .map_err(db_error)?;
    let page = client
        .prepare_cached(&page_sql(false, false))
        .await
        .map_err(db_error)?;
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let server_params: [&(dyn ToSql + Sync); 1] = [server];
    let page_params: [&(dyn ToSql + Sync); 2] = [server, &limit];
    let (found, rows) = tokio::join!(
        biased;
        client.query_opt(&by_id, &server_params),
        client.query(&page, &page_params),
    );
    let found = found.map_err(db_error)?;
    Ok((
        found.map(|r| decode_server(r.get(0))).transpose()?,
        Some(rows.map_err(db_error)?),
    ))
}

async fn read_server(client: Object, id: &Uuid) -> Result<Option<Server>> {
    server_record(&client, id).await
}

/// A server's record, on a pooled connection or inside a write's transaction.
pub(super) async fn server_record(
    client: &impl GenericClient,
    id: &Uuid,
) -> Result<Option<Server>> {
    let statement = client
        .prepare_cached(SERVER_BY_ID)
        .await
        .map_err(db_error)?;
    let row = client
        .query_opt(&statement, &[id])
        .await
        .map_err(db_error)?;
    row.map(|r| decode_server(r.get(0))).transpose()
}

/// The rows of a list page: `(start_time, seq, action)`, newest first.
async fn read_page(client: Object, server: &Uuid, query: &PageQuery<'_>) -> Result<Vec<Row>> {
    let older_than: Option<Position> = match query.after {
        After::Start => None,
        After::Cursor(Cursor(key)) => Some(position_of(&key)?),
        After::Marker(request_id) => match newest_by_request(&client, server, request_id).await? {
            Some(row) => Some((row.get(0), row.get(1))),
            None => return Err(StoreError::MarkerNotFound),
        },
    };
    let bounds = match (query.since, query.before) {
        (None, None) => None,
        (since, before) => Some(start_bounds(&client, server, since, before).await?),
    };
    let sql = page_sql(older_than.is_some(), bounds.is_some());
    let statement = client.prepare_cached(&sql).await.map_err(db_error)?;
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let (marker_start, marker_seq) = older_than.unwrap_or_default();
    let (low, high) = bounds.unwrap_or_default();
    let (since, before) = (query.since, query.before);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![server, &limit];
    if older_than.is_some() {
        params.extend([&marker_start as &(dyn ToSql + Sync), &marker_seq]);
    }
    if bounds.is_some() {
        params.extend([&low as &(dyn ToSql + Sync), &high, &since, &before]);
    }
    let rows = client.query(&statement, &params).await.map_err(db_error)?;
    match rows.is_empty() {
        true => unless_purged(&client, server, rows).await,
        false => Ok(rows),
    }
}

fn visit_rows(
    server: &Uuid,
    rows: &[Row],
    mut visit: impl FnMut(&ActionView<'_>),
) -> Result<PageEnd> {
    let mut cursor = None;
    for row in rows {
        let view = decode_view(row.get(2))?;
        visit(&view);
        cursor = Some(Cursor(key_of(server, row)));
    }
    Ok(PageEnd {
        count: rows.len(),
        cursor,
    })
}

/// The newest action with this request id: `(start_time, seq, action, events)`.
async fn newest_by_request(
    client: &Object,
    server: &Uuid,
    request_id: &str,
) -> Result<Option<Row>> {
    let statement = client
        .prepare_cached(NEWEST_BY_REQUEST)
        .await
        .map_err(db_error)?;
    client
        .query_opt(&statement, &[server, &request_id.as_bytes()])
        .await
        .map_err(db_error)
}

async fn read_action(client: Object, server: &Uuid, request_id: &str) -> Result<Option<Row>> {
    match newest_by_request(&client, server, request_id).await? {
        None => unless_purged(&client, server, None).await,
        found => Ok(found),
    }
}

/// A shown action, with its events newest first when asked for.
fn shown(row: Option<Row>, with_events: bool) -> Result<Option<(Action, Vec<Event>)>> {
    let Some(row) = row else { return Ok(None) };
    let action = decode(row.get(2))?;
    let events = match with_events {
        true => {
            let mut events: Vec<Event> = decode(row.get(3))?;
            events.reverse();
            events
        }
        false => Vec::new(),
    };
    Ok(Some((action, events)))
}

/// A purge is one transaction, so a statement sees a whole history or none of it; but a read
/// that found the server and then nothing of its history may have run after a purge that
/// came between. It fails then as if it came after the purge, as on the embedded store.
async fn unless_purged<T>(
    client: &deadpool_postgres::Client,
    server: &Uuid,
    found: T,
) -> Result<T> {
    let statement = client
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM servers WHERE instance_uuid = $1)")
        .await
        .map_err(db_error)?;
    let row = client
        .query_one(&statement, &[server])
        .await
        .map_err(db_error)?;
    match row.get::<_, bool>(0) {
        true => Ok(found),
        false => Err(StoreError::ServerNotFound(*server)),
    }
}

/// A list page: newest first from the start or after a marker, within start-time bounds when
/// a time filter applies. Parameters: $1 server, $2 limit, then the marker's position, then
/// the bounds and the filter's times. Each shape is its own statement, so every plan is an
/// index range scan with its conditions known (no `$n IS NULL OR ...` a generic plan would
/// have to evaluate row by row).
pub fn page_sql(after_marker: bool, filtered: bool) -> String {
    let mut sql =
        String::from("SELECT start_time, seq, action FROM actions WHERE instance_uuid = $1");
    let mut next = 3;
    if after_marker {
        sql.push_str(" AND (start_time, seq) < ($3, $4)");
        next = 5;
    }
    if filtered {
        let (low, high, since, before) = (next, next + 1, next + 2, next + 3);
        sql.push_str(&format!(
            " AND start_time >= ${low} AND start_time <= ${high}
              AND ((${since}::bigint IS NULL OR updated_at >= ${since})
              AND (${before}::bigint IS NULL OR updated_at <= ${before}))
              AND updated_at IS NOT NULL"
        ));
    }
    sql.push_str(" ORDER BY start_time DESC, seq DESC LIMIT $2");
    sql
}

/// The start times an action updated within `[since, before]` can have on this server, from
/// its lag bounds (as the embedded store's scans are bounded).
async fn start_bounds(
    client: &deadpool_postgres::Client,
    server: &Uuid,
    since: Option<Micros>,
    before: Option<Micros>,
) -> Result<(i64, i64)> {
    let statement = client
        .prepare_cached("SELECT lag_min, lag_max FROM servers WHERE instance_uuid = $1")
        .await
        .map_err(db_error)?;
    let (lag_min, lag_max): (i64, i64) = match client
        .query_opt(&statement, &[server])
        .await
        .map_err(db_error)?
    {
        Some(row) => (row.get(0), row.get(1)),
        None => (0, 0),
    };
    let low = since.map_or(i64::MIN, |s| s.saturating_sub(lag_max));
    let high = before.map_or(i64::MAX, |b| b.saturating_sub(lag_min));
    Ok((low, high))
}
