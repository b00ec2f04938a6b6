//! The bulk format: one server per line with its actions (oldest first) and their events
//! (oldest first), every time explicit, so a history moves between stores unchanged.

use std::io::{self, BufRead, Write};

use crate::input::{Fields, InputError, Limits, parse_object, server_uuid};
use crate::model::{Action, Event, Server, ServerHistory};
use crate::store::{ImportCounts, Store, StoreError};
use crate::timeutil::{Micros, write_micros};

const SERVER_FIELDS: &[&str] = &[
    "uuid",
    "project_id",
    "user_id",
    "host",
    "deleted",
    "created_at",
    "deleted_at",
    "actions",
];
const ACTION_FIELDS: &[&str] = &[
    "request_id",
    "action",
    "user_id",
    "project_id",
    "start_time",
    "updated_at",
    "finish_time",
    "message",
    "created_at",
    "events",
];
const EVENT_FIELDS: &[&str] = &[
    "event",
    "start_time",
    "finish_time",
    "result",
    "traceback",
    "host",
    "details",
    "created_at",
];

/// Parses one line. The whole line is checked before anything of it is stored.
pub fn parse_line(line: &[u8], limits: Limits) -> Result<ServerHistory, InputError> {
    let map = parse_object(line)?;
    let f = Fields::new(&map, "", limits);
    f.only(SERVER_FIELDS)?;
    let id_text = f.name("uuid")?;
    let uuid = server_uuid(&id_text)
        .ok_or_else(|| InputError(format!("Invalid input for field/attribute uuid. Value: {id_text}. Not a server id (lowercase 8-4-4-4-12 hex).")))?;
    let server = Server {
        project_id: f.name("project_id")?,
        user_id: f.opt_name("user_id")?,
        host: f.opt_name("host")?,
        created_at: f.opt_time("created_at")?,
        deleted: f.bool_or("deleted", false)?,
        deleted_at: f.opt_time("deleted_at")?,
    };
    let actions = f
        .objects("actions")?
        .iter()
        .map(parse_action)
        .collect::<Result<_, _>>()?;
    Ok(ServerHistory {
        uuid,
        server,
        actions,
    })
}

fn parse_action(f: &Fields<'_>) -> Result<(Action, Vec<Event>), InputError> {
    f.only(ACTION_FIELDS)?;
    let start_time = f.time("start_time")?;
    let action = Action {
        request_id: f.name("request_id")?,
        action: f.name("action")?,
        user_id: f.opt_name("user_id")?,
        project_id: f.opt_name("project_id")?,
        start_time,
        finish_time: f.opt_time("finish_time")?,
        // Absent means "as recorded at start"; an explicit null stays null.
        updated_at: f.present_time("updated_at")?.unwrap_or(Some(start_time)),
        message: f.opt_name("message")?,
        created_at: f.opt_time("created_at")?,
    };
    let events = f
        .objects("events")?
        .iter()
        .map(parse_event)
        .collect::<Result<_, _>>()?;
    Ok((action, events))
}

fn parse_event(f: &Fields<'_>) -> Result<Event, InputError> {
    f.only(EVENT_FIELDS)?;
    Ok(Event {
        event: f.name("event")?,
        start_time: f.opt_time("start_time")?,
        finish_time: f.opt_time("finish_time")?,
        result: f.opt_name("result")?,
        traceback: f.opt_text("traceback")?,
        host: f.opt_name("host")?,
        details: f.opt_text("details")?,
        created_at: f.opt_time("created_at")?,
    })
}

/// Writes one line (without the newline), in the field order of the format's examples.
pub fn write_line(out: &mut Vec<u8>, h: &ServerHistory) {
    out.extend_from_slice(b"{\"uuid\":");
    put_str(out, &h.uuid.hyphenated().to_string());
    field_str(out, "project_id", Some(&h.server.project_id));
    field_str(out, "user_id", h.server.user_id.as_deref());
    field_str(out, "host", h.server.host.as_deref());
    out.extend_from_slice(if h.server.deleted {
        b",\"deleted\":true"
    } else {
        b",\"deleted\":false"
    });
    optional_time(out, "created_at", h.server.created_at);
    optional_time(out, "deleted_at", h.server.deleted_at);
    out.extend_from_slice(b",\"actions\":[");
    for (i, (a, events)) in h.actions.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"request_id\":");
        put_str(out, &a.request_id);
        field_str(out, "action", Some(&a.action));
        field_str(out, "user_id", a.user_id.as_deref());
        field_str(out, "project_id", a.project_id.as_deref());
        field_time(out, "start_time", Some(a.start_time));
        field_time(out, "updated_at", a.updated_at);
        field_time(out, "finish_time", a.finish_time);
        field_str(out, "message", a.message.as_deref());
        optional_time(out, "created_at", a.created_at);
        out.extend_from_slice(b",\"events\":[");
        for (j, e) in events.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"event\":");
            put_str(out, &e.event);
            field_time(out, "start_time", e.start_time);
            field_time(out, "finish_time", e.finish_time);
            field_str(out, "result", e.result.as_deref());
            field_str(out, "traceback", e.traceback.as_deref());
            field_str(out, "host", e.host.as_deref());
            field_str(out, "details", e.details.as_deref());
            optional_time(out, "created_at", e.created_at);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing into a Vec cannot fail");
}

fn field_str(out: &mut Vec<u8>, key: &str, value: Option<&str>) {
    out.extend_from_slice(format!(",\"{key}\":").as_bytes());
    match value {
        Some(v) => put_str(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

fn field_time(out: &mut Vec<u8>, key: &str, value: Option<Micros>) {
    out.extend_from_slice(format!(",\"{key}\":").as_bytes());
    match value {
        Some(t) => {
            out.push(b'"');
            write_micros(out, t);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// Keys that only appear when set, so histories that never had them round-trip unchanged.
fn optional_time(out: &mut Vec<u8>, key: &str, value: Option<Micros>) {
    if value.is_some() {
        field_time(out, key, value);
    }
}

#[derive(Debug)]
pub enum ImportError {
    /// A line that is not valid; nothing of it was written.
    Line {
        line: u64,
        error: InputError,
    },
    Read(io::Error),
    Store(StoreError),
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::Line { line, error } => write!(f, "line {line}: {error}"),
            ImportError::Read(e) => write!(f, "reading the input failed: {e}"),
            ImportError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ImportError {}

/// Streams lines from `input` into the store; blank lines are skipped. Every line before a bad
/// one is stored and durable when this returns, whatever it returns.
pub fn import(
    store: &Store,
    input: impl BufRead,
    limits: Limits,
    mut progress: impl FnMut(u64, &ImportCounts),
) -> Result<ImportCounts, (ImportCounts, ImportError)> {
    let mut counts = ImportCounts::default();
    let mut line_no = 0u64;
    let result = (|| {
        for line in input.split(b'\n') {
            line_no += 1;
            let line = line.map_err(ImportError::Read)?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let history = parse_line(&line, limits).map_err(|error| ImportError::Line {
                line: line_no,
                error,
            })?;
            counts.add(store.import_server(&history).map_err(ImportError::Store)?);
            progress(line_no, &counts);
        }
        Ok(())
    })();
    let synced = store.durable().map_err(ImportError::Store);
    match result.and(synced) {
        Ok(()) => Ok(counts),
        Err(e) => Err((counts, e)),
    }
}

/// Writes every server's history, one line each, in server id order.
pub fn export(store: &Store, mut out: impl Write) -> Result<u64, ExportError> {
    let mut servers = 0;
    let mut line = Vec::new();
    for item in store.server_ids() {
        let (uuid, server) = item.map_err(ExportError::Store)?;
        let actions = store
            .history(&uuid)
            .collect::<Result<Vec<_>, _>>()
            .map_err(ExportError::Store)?;
        line.clear();
        write_line(
            &mut line,
            &ServerHistory {
                uuid,
                server,
                actions,
            },
        );
        line.push(b'\n');
        out.write_all(&line).map_err(ExportError::Write)?;
        servers += 1;
    }
    out.flush().map_err(ExportError::Write)?;
    Ok(servers)
}

#[derive(Debug)]
pub enum ExportError {
    Store(StoreError),
    Write(io::Error),
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportError::Store(e) => write!(f, "{e}"),
            ExportError::Write(e) => write!(f, "writing the export failed: {e}"),
        }
    }
}

impl std::error::Error for ExportError {}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"uuid":"a0000000-0000-4000-8000-000000000001","project_id":"p","user_id":null,"host":"h","deleted":false,"actions":[{"request_id":"req-1","action":"create","user_id":"u","project_id":"p","start_time":"2018-04-25T01:26:29.000000","updated_at":null,"finish_time":null,"message":"Error","events":[{"event":"e","start_time":"2018-04-25T01:26:30.000000","finish_time":null,"result":null,"traceback":"line \"1\"\n","host":null,"details":null}]}]}"#;

    #[test]
    fn a_line_round_trips_byte_for_byte() {
        let parsed = parse_line(LINE.as_bytes(), Limits::default()).unwrap();
        assert_eq!(parsed.actions[0].0.updated_at, None);
        let mut out = Vec::new();
        write_line(&mut out, &parsed);
        assert_eq!(String::from_utf8(out).unwrap(), LINE);
    }

    #[test]
    fn absent_updated_at_means_start_time() {
        let line = LINE.replace(r#""updated_at":null,"#, "");
        let parsed = parse_line(line.as_bytes(), Limits::default()).unwrap();
        assert_eq!(
            parsed.actions[0].0.updated_at,
            Some(parsed.actions[0].0.start_time)
        );
    }

    #[test]
    fn bad_lines_name_the_field() {
        let bad = LINE.replace("2018-04-25T01:26:30.000000", "soon");
        let err = parse_line(bad.as_bytes(), Limits::default()).unwrap_err();
        assert!(err.0.contains("actions[0].events[0].start_time"), "{err}");
        let unknown = LINE.replace(r#""host":"h","#, r#""host":"h","colour":1,"#);
        let err = parse_line(unknown.as_bytes(), Limits::default()).unwrap_err();
        assert_eq!(
            err.0,
            "Additional properties are not allowed ('colour' was unexpected)"
        );
    }
}
