//! The write API under `/ingest/v1/`: record servers, actions and events with Nova's write
//! semantics, and bulk-import NDJSON histories into a running store.
//!
//! | method | path | effect |
//! |---|---|---|
//! | PUT | `servers/{id}` | register or update a server |
//! | DELETE | `servers/{id}` | soft-delete it (its actions stay readable from 2.21) |
//! | POST | `servers/{id}/purge` | remove it and its whole history |
//! | POST | `servers/{id}/actions` | action start |
//! | POST | `servers/{id}/actions/{rid}/finish` | action finish |
//! | POST | `servers/{id}/actions/{rid}/events` | event start |
//! | POST | `servers/{id}/actions/{rid}/events/{event}/finish` | event finish |
//! | POST | `import` | NDJSON body, one server history per line |

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use futures_core::Stream;
use uuid::Uuid;

use super::call::Call;
use super::fault::Fault;
use super::reply::{JSON, Reply};
use super::stream::{Chunks, StoreStream};
use super::version::WRITE_VIEW;
use super::view::{self, EventShape};
use crate::input::server_uuid;
use crate::json::Obj;
use crate::lines::Lines;
use crate::model::Server;
use crate::ndjson;
use crate::policy;
use crate::store::{ActionWithEvents, Applied, ImportCounts, Store, StoreError, Written};
use crate::timeutil::now_micros;
use crate::write_request::{WriteOp, WriteRequest, parse_write};

/// What the path under `/ingest/v1/` asks for.
enum Target {
    Import,
    Export,
    Write(String, WriteOp),
}

fn route(method: &Method, rest: &str) -> Option<Target> {
    let segments: Vec<&str> = rest.split('/').collect();
    let write = |id: &str, op| Some(Target::Write(id.to_string(), op));
    let owned = |s: &str| s.to_string();
    match (method, segments.as_slice()) {
        (&Method::POST, ["import"]) => Some(Target::Import),
        (&Method::GET, ["export"]) => Some(Target::Export),
        (&Method::PUT, ["servers", id]) => write(id, WriteOp::Upsert),
        (&Method::DELETE, ["servers", id]) => write(id, WriteOp::Delete),
        (&Method::POST, ["servers", id, "purge"]) => write(id, WriteOp::Purge),
        (&Method::POST, ["servers", id, "actions"]) => write(id, WriteOp::StartAction),
        (&Method::POST, ["servers", id, "actions", rid, "finish"]) => write(
            id,
            WriteOp::FinishAction {
                request_id: owned(rid),
            },
        ),
        (&Method::POST, ["servers", id, "actions", rid, "events"]) => write(
            id,
            WriteOp::StartEvent {
                request_id: owned(rid),
            },
        ),
        (&Method::POST, ["servers", id, "actions", rid, "events", event, "finish"]) => write(
            id,
            WriteOp::FinishEvent {
                request_id: owned(rid),
                event: owned(event),
            },
        ),
        _ => None,
    }
}

pub async fn handle(call: &Call<'_>, rest: &str, payload: &mut web::Payload) -> HttpResponse {
    let caller = match call.authenticate().await {
        Ok(caller) => caller,
        Err(answer) => return answer,
    };
    // Nova's `?_method=` override belongs to the read API: a write answers only its own method,
    // so that a link (a GET) can never delete or purge.
    let Some(target) = route(call.req.method(), rest) else {
        return call.fail(Fault::NoSuchResource).finish();
    };
    // A write has no owning project yet: the target is the caller's own project, and the
    // default rule looks at roles only.
    if !caller.allows(policy::WRITE, caller.project().unwrap_or("")) {
        return call.fail(Fault::Forbidden(policy::WRITE)).finish();
    }
    if let Some(ct) = call.header("content-type") {
        let media = ct.split(';').next().unwrap_or("").trim();
        if !media.is_empty()
            && ![
                "application/json",
                "application/x-ndjson",
                "text/plain",
                // curl's label for `-d` and `--data-binary`, so that the obvious command works.
                "application/x-www-form-urlencoded",
            ]
            .contains(&media)
        {
            return call.fail(Fault::UnsupportedMediaType).finish();
        }
    }
    let result = match target {
        Target::Import => import(call, payload).await,
        Target::Export => export(call),
        Target::Write(server, op) => write(call, &server, op, payload).await,
    };
    match result {
        Ok(reply) => reply.request_id(&call.request_id).finish(),
        Err(fault) => call.fail(fault).finish(),
    }
}

/// The next piece of the body, which must arrive within `wait` ([server] body_timeout).
async fn next_chunk(
    payload: &mut web::Payload,
    wait: Duration,
) -> Option<Result<web::Bytes, Fault>> {
    let next = poll_fn(|cx| Pin::new(&mut *payload).poll_next(cx));
    match actix_web::rt::time::timeout(wait, next).await {
        Err(_) => Some(Err(too_slow(wait))),
        Ok(chunk) => Some(
            chunk?.map_err(|e| Fault::BadRequest(format!("Reading the request body failed: {e}"))),
        ),
    }
}

fn too_slow(wait: Duration) -> Fault {
    Fault::BodyTooSlow {
        seconds: wait.as_secs(),
    }
}

/// A single write's body, up to `max` bytes ([server] max_body_bytes), all of it within
/// [server] body_timeout; imports stream instead.
pub(super) async fn read_body(
    call: &Call<'_>,
    payload: &mut web::Payload,
) -> Result<Vec<u8>, Fault> {
    let max = call.state.config.server.max_body_bytes;
    let declared = call
        .header("content-length")
        .and_then(|n| n.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(Fault::BodyTooLarge { max });
    }
    let within = body_timeout(call);
    let read_all = async {
        let mut body = Vec::new();
        while let Some(chunk) = next_chunk(payload, within).await {
            let chunk = chunk?;
            if body.len() + chunk.len() > max {
                return Err(Fault::BodyTooLarge { max });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    actix_web::rt::time::timeout(within, read_all)
        .await
        .unwrap_or_else(|_| Err(too_slow(within)))
}

fn body_timeout(call: &Call<'_>) -> Duration {
    Duration::from_secs(call.state.config.server.body_timeout.seconds().max(1))
}

/// Runs a store call off the async workers: a write may wait for another write to the same
/// server (a long import line, a purge) or for its group commit.
async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    work: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Fault> {
    let store = Arc::clone(store);
    match web::block(move || work(&store)).await {
        Ok(result) => result.map_err(Fault::from_write),
        Err(e) => Err(Fault::Internal(e.to_string())),
    }
}

/// Applies a write off the async workers and resolves once it is durable.
async fn apply<T: Send + 'static>(
    store: &Arc<Store>,
    work: impl FnOnce(&Store) -> Result<Applied<T>, StoreError> + Send + 'static,
) -> Result<Written<T>, Fault> {
    Ok(apply_seen(store, work).await?.0)
}

/// [`apply`], with the project of the server written to when the store learnt it.
async fn apply_seen<T: Send + 'static>(
    store: &Arc<Store>,
    work: impl FnOnce(&Store) -> Result<Applied<T>, StoreError> + Send + 'static,
) -> Result<(Written<T>, Option<String>), Fault> {
    let applied = blocking(store, work).await?;
    let project = applied.project().map(str::to_string);
    let written = applied.durable(store).await.map_err(Fault::from_write)?;
    Ok((written, project))
}

async fn write(
    call: &Call<'_>,
    server: &str,
    op: WriteOp,
    payload: &mut web::Payload,
) -> Result<Reply, Fault> {
    let id = server_uuid(server).ok_or_else(|| Fault::InvalidServerId(server.to_string()))?;
    let body = read_body(call, payload).await?;
    let request = parse_write(op, &body, call.state.limits, now_micros())?;
    let store = &call.state.store;
    match request {
        WriteRequest::Upsert(fields) => {
            let written = apply(store, move |s| s.apply_upsert_server(&id, fields)).await?;
            Ok(server_reply(&id, written))
        }
        WriteRequest::Delete { deleted_at } => {
            let written =
                apply(store, move |s| s.apply_soft_delete_server(&id, deleted_at)).await?;
            Ok(server_reply(&id, written))
        }
        WriteRequest::Purge => match blocking(store, move |s| s.purge_server(&id)).await? {
            Some(actions) => {
                let mut body = Vec::new();
                let mut outer = Obj::begin(&mut body);
                let mut inner = Obj::begin(outer.key("purged"));
                inner
                    .str("server", &id.hyphenated().to_string())
                    .int("actions", actions as i64);
                inner.end();
                outer.end();
                Ok(Reply::json(200, JSON, body))
            }
            None => Err(Fault::InstanceNotFound(id.to_string())),
        },
        WriteRequest::StartAction(start) => {
            let seen = apply_seen(store, move |s| s.apply_start_action(&id, start)).await?;
            Ok(action_reply(call, &id, seen, true).await)
        }
        WriteRequest::FinishAction {
            request_id,
            finish_time,
            time_given,
        } => {
            let seen = apply_seen(store, move |s| {
                s.apply_finish_action(&id, &request_id, finish_time, time_given)
            })
            .await?;
            Ok(action_reply(call, &id, seen, false).await)
        }
        WriteRequest::StartEvent(start) => {
            let seen = apply_seen(store, move |s| s.apply_start_event(&id, start)).await?;
            Ok(action_reply(call, &id, seen, true).await)
        }
        WriteRequest::FinishEvent(finish) => {
            let seen = apply_seen(store, move |s| s.apply_finish_event(&id, finish)).await?;
            Ok(action_reply(call, &id, seen, false).await)
        }
    }
}

fn server_reply(id: &Uuid, written: Written<Server>) -> Reply {
    let s = &written.record;
    let mut body = Vec::new();
    let mut outer = Obj::begin(&mut body);
    let mut o = Obj::begin(outer.key("server"));
    o.str("id", &id.hyphenated().to_string())
        .str("project_id", &s.project_id)
        .opt_str("user_id", s.user_id.as_deref())
        .opt_str("name", s.name.as_deref())
        .str("status", s.shown_status())
        .opt_str("host", s.host.as_deref())
        .time("created_at", s.created_at)
        .time("updated_at", s.updated_at)
        .bool("deleted", s.deleted)
        .time("deleted_at", s.deleted_at);
    o.end();
    outer.end();
    Reply::json(200, JSON, body)
}

/// The action as the read API shows it to an admin at the latest version.
async fn action_reply(
    call: &Call<'_>,
    id: &Uuid,
    (written, project): (Written<ActionWithEvents>, Option<String>),
    creates: bool,
) -> Reply {
    let status = if creates && written.changed { 201 } else { 200 };
    let (action, mut events) = written.record;
    // Stored oldest first; shown newest first, as a read shows them.
    events.reverse();
    let shape = EventShape::new(WRITE_VIEW, true, true).expect("admins see events");
    let server_project = match project {
        Some(project) => project,
        None => call
            .state
            .store
            .fetch_server(id)
            .await
            .ok()
            .flatten()
            .map(|s| s.project_id)
            .unwrap_or_default(),
    };
    let mut body = Vec::new();
    let shown = view::Shown {
        instance: id,
        action: &action,
        events: Some((&shape, &events)),
        server_project: &server_project,
    };
    shown.write(&mut body, WRITE_VIEW);
    Reply::json(status, JSON, body)
}

/// Streams NDJSON lines from the body; each line is checked whole before any of it is stored.
/// Whatever happens, the lines stored before a failure are made durable before answering.
async fn import(call: &Call<'_>, payload: &mut web::Payload) -> Result<Reply, Fault> {
    let store = &call.state.store;
    let mut counts = ImportCounts::default();
    let outcome = import_lines(call, payload, &mut counts).await;
    blocking(store, Store::durable).await?;
    outcome?;
    let mut body = Vec::new();
    let mut outer = Obj::begin(&mut body);
    let mut o = Obj::begin(outer.key("imported"));
    o.int("servers", counts.servers as i64)
        .int("actions", counts.actions as i64)
        .int("events", counts.events as i64)
        .int("unchanged", counts.unchanged as i64);
    o.end();
    outer.end();
    Ok(Reply::json(200, JSON, body))
}

/// Bytes of body gathered on the async worker before they are handed to a blocking thread.
const HAND_OFF_BYTES: usize = 1 << 20;

/// The async worker only gathers the body's pieces (without copying them); cutting lines,
/// checking and storing them happen on a blocking thread, a megabyte at a time, so that a long
/// line holds up no other request.
async fn import_lines(
    call: &Call<'_>,
    payload: &mut web::Payload,
    counts: &mut ImportCounts,
) -> Result<(), Fault> {
    let store = &call.state.store;
    let limits = call.state.limits;
    let wait = body_timeout(call);
    let mut lines = Lines::new(limits.max_line);
    loop {
        let mut pieces = Vec::new();
        let mut gathered = 0;
        let mut end = false;
        while gathered < HAND_OFF_BYTES {
            match next_chunk(payload, wait).await {
                Some(chunk) => {
                    let chunk = chunk.map_err(|f| f.after_servers(counts.servers))?;
                    gathered += chunk.len();
                    pieces.push(chunk);
                }
                None => {
                    end = true;
                    break;
                }
            }
        }
        let before = *counts;
        let (rest, after, outcome) = blocking(store, move |s| {
            let mut counts = before;
            let outcome = import_pieces(s, &mut lines, &pieces, end, limits, &mut counts);
            Ok((lines, counts, outcome))
        })
        .await?;
        lines = rest;
        *counts = after;
        outcome.map_err(|e| Fault::from(e).after_servers(counts.servers))?;
        if end {
            return Ok(());
        }
    }
}

/// Stores the lines `pieces` complete (and the last one, at the `end`).
fn import_pieces(
    store: &Store,
    lines: &mut Lines,
    pieces: &[web::Bytes],
    end: bool,
    limits: crate::input::Limits,
    counts: &mut ImportCounts,
) -> Result<(), ndjson::ImportError> {
    for piece in pieces {
        ndjson::import_piece(store, lines, Some(piece), limits, counts)?;
    }
    if end {
        ndjson::import_piece(store, lines, None, limits, counts)?;
    }
    Ok(())
}

/// A live backup: every server's history as NDJSON, one line per server in id order, read in
/// chunks as it is sent so memory holds a chunk at a time, whatever a history's length.
fn export(call: &Call<'_>) -> Result<Reply, Fault> {
    // A store whose flush failed may hold unacknowledged writes: no export, rather than one
    // that stops half way.
    if let Some(why) = call.state.store.broken() {
        log::error!("export refused: {why}");
        return Err(Fault::ExportRefused);
    }
    let stream = StoreStream::new(Arc::clone(&call.state.store), ExportChunks::default());
    Ok(Reply::new(200, Some("application/x-ndjson"), Vec::new()).streaming(stream))
}

#[derive(Default)]
struct ExportChunks(ndjson::Exporter);

impl Chunks for ExportChunks {
    fn next_chunk(&mut self, store: &Store, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        self.0.next_chunk(store, out)
    }

    fn failed(&self, e: &StoreError) {
        log::error!("export stopped: {e}");
    }
}
