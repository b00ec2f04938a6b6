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

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use futures_core::Stream;
use serde_json::Map;
use uuid::Uuid;

use super::Call;
use super::actions::{EventShape, write_action};
use super::reply::{JSON, Reply};
use super::version::{MAX_MINOR, Version};
use crate::input::{Fields, InputError, parse_object, server_uuid};
use crate::json::{Obj, array};
use crate::model::Server;
use crate::ndjson;
use crate::policy;
use crate::store::{
    ActionStart, ActionWithEvents, EventFinish, EventStart, ImportCounts, ServerFields, Store,
    StoreError, Written,
};
use crate::timeutil::now_micros;

enum Op {
    Export,
    Upsert,
    Delete,
    Purge,
    StartAction,
    FinishAction(String),
    StartEvent(String),
    FinishEvent(String, String),
}

fn route(method: &Method, rest: &str) -> Result<Option<(String, Op)>, ()> {
    let segments: Vec<&str> = rest.split('/').collect();
    let (server, op) = match (method, segments.as_slice()) {
        (&Method::POST, ["import"]) => return Ok(None),
        (&Method::GET, ["export"]) => return Ok(Some((String::new(), Op::Export))),
        (&Method::PUT, ["servers", id]) => (id, Op::Upsert),
        (&Method::DELETE, ["servers", id]) => (id, Op::Delete),
        (&Method::POST, ["servers", id, "purge"]) => (id, Op::Purge),
        (&Method::POST, ["servers", id, "actions"]) => (id, Op::StartAction),
        (&Method::POST, ["servers", id, "actions", rid, "finish"]) => {
            (id, Op::FinishAction(rid.to_string()))
        }
        (&Method::POST, ["servers", id, "actions", rid, "events"]) => {
            (id, Op::StartEvent(rid.to_string()))
        }
        (&Method::POST, ["servers", id, "actions", rid, "events", event, "finish"]) => {
            (id, Op::FinishEvent(rid.to_string(), event.to_string()))
        }
        _ => return Err(()),
    };
    Ok(Some((server.to_string(), op)))
}

pub async fn handle(call: &Call<'_>, rest: &str, payload: web::Payload) -> HttpResponse {
    let ctx = match call.authenticate().await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    let Ok(target) = route(&call.method, rest) else {
        return call.fault(404, "The resource could not be found.").finish();
    };
    // A write has no owning project yet: the target is the caller's own project, and the
    // default rule looks at roles only.
    if !ctx.allows(policy::WRITE, ctx.project().unwrap_or("")) {
        let message = format!("Policy doesn't allow {} to be performed.", policy::WRITE);
        return call.fault(403, &message).finish();
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
            return call.fault(415, "Unsupported Content-Type").finish();
        }
    }
    let result = match target {
        None => import(call, payload).await,
        Some((_, Op::Export)) => Ok(export(call)),
        Some((server, op)) => write(call, &server, op, payload).await,
    };
    match result {
        Ok(reply) => reply.request_id(&call.request_id).finish(),
        Err(Failure::Fault(code, message)) => call.fault(code, &message).finish(),
        Err(Failure::Internal(message)) => call.internal(None, &message),
    }
}

enum Failure {
    Fault(u16, String),
    Internal(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ServerNotFound(_)
            | StoreError::ActionNotFound { .. }
            | StoreError::EventNotFound { .. } => Failure::Fault(404, e.to_string()),
            // The disk is full, read-only or failing: the write is refused whole, reads go on.
            StoreError::Io(e) => {
                log::error!("a write failed in the store: {e}");
                Failure::Fault(
                    503,
                    "The store cannot accept writes right now; nothing was written.".into(),
                )
            }
            other => Failure::Internal(other.to_string()),
        }
    }
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        Failure::Fault(400, e.0)
    }
}

async fn next_chunk(payload: &mut web::Payload) -> Option<Result<web::Bytes, Failure>> {
    let chunk = poll_fn(|cx| Pin::new(&mut *payload).poll_next(cx)).await?;
    Some(chunk.map_err(|e| Failure::Fault(400, format!("Reading the request body failed: {e}"))))
}

/// A single write's body, up to `max` bytes ([server] max_body_bytes); imports stream instead.
async fn read_body(mut payload: web::Payload, max: usize) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = next_chunk(&mut payload).await {
        let chunk = chunk?;
        if body.len() + chunk.len() > max {
            return Err(Failure::Fault(
                413,
                format!("Request body is larger than {max} bytes."),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Runs a store call off the async workers: writes wait for their group commit.
async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    work: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Failure> {
    let store = Arc::clone(store);
    match web::block(move || work(&store)).await {
        Ok(result) => result.map_err(Failure::from),
        Err(e) => Err(Failure::Internal(e.to_string())),
    }
}

async fn write(
    call: &Call<'_>,
    server: &str,
    op: Op,
    payload: web::Payload,
) -> Result<Reply, Failure> {
    let id = server_uuid(server).ok_or_else(|| {
        Failure::Fault(
            400,
            format!("Invalid server id '{server}': expected a lowercase UUID (8-4-4-4-12 hex)."),
        )
    })?;
    let body = read_body(payload, call.state.config.server.max_body_bytes).await?;
    let map = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        parse_object(&body)?
    };
    let f = Fields::new(&map, "", call.state.limits);
    let store = &call.state.store;
    match op {
        Op::Export => unreachable!("export is routed before any write"),
        Op::Upsert => {
            f.only(&["project_id", "user_id", "host", "created_at"])?;
            let fields = ServerFields {
                project_id: f.name("project_id")?,
                user_id: f.opt_name("user_id")?,
                host: f.opt_name("host")?,
                created_at: Some(f.opt_time("created_at")?.unwrap_or_else(now_micros)),
            };
            let written = store
                .apply_upsert_server(&id, fields)?
                .durable(store)
                .await?;
            Ok(server_reply(&id, written))
        }
        Op::Delete => {
            f.only(&["deleted_at"])?;
            let at = f.opt_time("deleted_at")?.unwrap_or_else(now_micros);
            let written = store
                .apply_soft_delete_server(&id, at)?
                .durable(store)
                .await?;
            Ok(server_reply(&id, written))
        }
        Op::Purge => {
            f.only(&[])?;
            match blocking(store, move |s| s.purge_server(&id)).await? {
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
                None => Err(Failure::Fault(
                    404,
                    format!("Instance {id} could not be found."),
                )),
            }
        }
        Op::StartAction => {
            f.only(&[
                "request_id",
                "action",
                "user_id",
                "project_id",
                "start_time",
            ])?;
            let given = f.opt_time("start_time")?;
            let start = ActionStart {
                request_id: f.name("request_id")?,
                action: f.name("action")?,
                user_id: f.opt_name("user_id")?,
                project_id: f.opt_name("project_id")?,
                start_time: given.unwrap_or_else(now_micros),
                time_given: given.is_some(),
            };
            let written = store.apply_start_action(&id, start)?.durable(store).await?;
            Ok(action_reply(call, &id, written, true))
        }
        Op::FinishAction(request_id) => {
            f.only(&["finish_time"])?;
            let given = f.opt_time("finish_time")?;
            let at = given.unwrap_or_else(now_micros);
            let written = store
                .apply_finish_action(&id, &request_id, at, given.is_some())?
                .durable(store)
                .await?;
            Ok(action_reply(call, &id, written, false))
        }
        Op::StartEvent(request_id) => {
            f.only(&[
                "event",
                "host",
                "details",
                "start_time",
                "fallback_to_last_action",
            ])?;
            let given = f.opt_time("start_time")?;
            let start = EventStart {
                request_id,
                event: f.name("event")?,
                host: f.opt_name("host")?,
                details: f.opt_text("details")?,
                start_time: given.unwrap_or_else(now_micros),
                time_given: given.is_some(),
                fallback_to_last_action: f.bool_or("fallback_to_last_action", false)?,
            };
            let written = store.apply_start_event(&id, start)?.durable(store).await?;
            Ok(action_reply(call, &id, written, true))
        }
        Op::FinishEvent(request_id, event) => {
            f.only(&[
                "result",
                "traceback",
                "details",
                "finish_time",
                "fallback_to_last_action",
            ])?;
            let given = f.opt_time("finish_time")?;
            let finish = EventFinish {
                request_id,
                event,
                result: f.name("result")?,
                traceback: f.opt_text("traceback")?,
                details: f.opt_text("details")?,
                finish_time: given.unwrap_or_else(now_micros),
                time_given: given.is_some(),
                fallback_to_last_action: f.bool_or("fallback_to_last_action", false)?,
            };
            let written = store
                .apply_finish_event(&id, finish)?
                .durable(store)
                .await?;
            Ok(action_reply(call, &id, written, false))
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
        .opt_str("host", s.host.as_deref())
        .time("created_at", s.created_at)
        .bool("deleted", s.deleted)
        .time("deleted_at", s.deleted_at);
    o.end();
    outer.end();
    Reply::json(200, JSON, body)
}

/// The action as the read API shows it to an admin at the latest version.
fn action_reply(
    call: &Call<'_>,
    id: &Uuid,
    written: Written<ActionWithEvents>,
    creates: bool,
) -> Reply {
    let (action, events) = &written.record;
    let version = Version(MAX_MINOR);
    let shape = EventShape::new(version, true, true).expect("admins see events");
    let server_project = call
        .state
        .store
        .server(id)
        .ok()
        .flatten()
        .map(|s| s.project_id)
        .unwrap_or_default();
    let host_project = action
        .project_id
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or(&server_project);
    let mut body = Vec::new();
    let mut outer = Obj::begin(&mut body);
    write_action(
        outer.key("instanceAction"),
        &id.hyphenated().to_string(),
        &action.view(),
        version,
        |o| {
            array(o.key("events"), events.iter().rev(), |out, e| {
                shape.write(out, e, host_project)
            });
        },
    );
    outer.end();
    let status = if creates && written.changed { 201 } else { 200 };
    Reply::json(status, JSON, body)
}

/// Streams NDJSON lines from the body; each line is checked whole before any of it is stored.
/// Whatever happens, the lines stored before a failure are made durable before answering.
async fn import(call: &Call<'_>, payload: web::Payload) -> Result<Reply, Failure> {
    let store = &call.state.store;
    let mut counts = ImportCounts::default();
    let outcome = import_lines(call, payload, &mut counts).await;
    blocking(store, |s| s.durable()).await?;
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

async fn import_lines(
    call: &Call<'_>,
    mut payload: web::Payload,
    counts: &mut ImportCounts,
) -> Result<(), Failure> {
    let store = &call.state.store;
    let limits = call.state.limits;
    let mut pending: Vec<u8> = Vec::new();
    let mut line_no = 0u64;
    let mut finished = false;
    while !finished {
        match next_chunk(&mut payload).await {
            Some(chunk) => pending.extend_from_slice(&chunk?),
            None => {
                finished = true;
                pending.push(b'\n');
            }
        }
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            line_no += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let history = ndjson::parse_line(&line, limits).map_err(|e| {
                let done = counts.servers;
                Failure::Fault(
                    400,
                    format!("Line {line_no}: {e} (the {done} servers before it were imported)"),
                )
            })?;
            counts.add(blocking(store, move |s| s.import_server(&history)).await?);
        }
    }
    Ok(())
}

/// A live backup: every server's history as NDJSON, one line per server in id order, read in
/// chunks as it is sent so memory holds a chunk at a time, whatever a history's length.
fn export(call: &Call<'_>) -> Reply {
    let stream = ExportStream {
        store: Arc::clone(&call.state.store),
        exporter: ndjson::Exporter::default(),
        done: false,
    };
    Reply::new(200, Some("application/x-ndjson"), Vec::new()).streaming(stream)
}

struct ExportStream {
    store: Arc<Store>,
    exporter: ndjson::Exporter,
    done: bool,
}

impl Stream for ExportStream {
    type Item = Result<web::Bytes, actix_web::Error>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.done {
            return std::task::Poll::Ready(None);
        }
        let mut out = Vec::new();
        let this = &mut *self;
        std::task::Poll::Ready(match this.exporter.next_chunk(&this.store, &mut out) {
            Ok(false) => {
                this.done = true;
                None
            }
            Ok(true) => Some(Ok(web::Bytes::from(out))),
            Err(e) => {
                log::error!("export stopped: {e}");
                this.done = true;
                Some(Err(actix_web::error::ErrorInternalServerError(
                    "storage error",
                )))
            }
        })
    }
}
