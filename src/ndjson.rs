//! The bulk format: one server per line with its actions (oldest first) and their events
//! (oldest first), every time explicit, so a history moves between stores unchanged.

use std::io::{self, BufRead, Write};

use crate::input::{Fields, InputError, Limits, parse_object, server_uuid};
use crate::lines::{LineTooLong, Lines};
use crate::model::{Action, Event, Server, ServerHistory};
use crate::store::{ImportCounts, Store, StoreError};
use crate::timeutil::Micros;

const SERVER_FIELDS: &[&str] = &[
    "uuid",
    "project_id",
    "user_id",
    "name",
    "status",
    "host",
    "deleted",
    "created_at",
    "updated_at",
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
    if let Some(history) = fast::parse(line, limits) {
        return Ok(history);
    }
    careful_parse_line(line, limits)
}

/// Field by field, so that a rejection names the field at fault.
fn careful_parse_line(line: &[u8], limits: Limits) -> Result<ServerHistory, InputError> {
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
        name: f.opt_server_name("name")?,
        status: f.opt_server_status("status")?,
        updated_at: f.opt_time("updated_at")?,
        seq: 0,
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
    write_server_head(out, &h.uuid, &h.server);
    for (i, (a, events)) in h.actions.iter().enumerate() {
        write_action(out, i == 0, a, events);
    }
    write_server_tail(out);
}

/// A line's start, up to and including `"actions":[`.
pub fn write_server_head(out: &mut Vec<u8>, uuid: &uuid::Uuid, server: &Server) {
    out.extend_from_slice(b"{\"uuid\":");
    put_str(out, &uuid.hyphenated().to_string());
    field_str(out, "project_id", Some(&server.project_id));
    field_str(out, "user_id", server.user_id.as_deref());
    // Written only when set, so that lines from before names round-trip unchanged.
    if let Some(name) = &server.name {
        field_str(out, "name", Some(name));
    }
    if let Some(status) = &server.status {
        field_str(out, "status", Some(status));
    }
    field_str(out, "host", server.host.as_deref());
    out.extend_from_slice(if server.deleted {
        b",\"deleted\":true"
    } else {
        b",\"deleted\":false"
    });
    optional_time(out, "created_at", server.created_at);
    optional_time(out, "updated_at", server.updated_at);
    optional_time(out, "deleted_at", server.deleted_at);
    out.extend_from_slice(b",\"actions\":[");
}

/// One action of a line with its events; `first` says whether a comma is needed.
pub fn write_action(out: &mut Vec<u8>, first: bool, a: &Action, events: &[Event]) {
    if !first {
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

/// A line's end (without the newline).
pub fn write_server_tail(out: &mut Vec<u8>) {
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
    crate::json::write_time(out, value);
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
    /// A line longer than `[storage] max_import_line_bytes`; nothing of it was written.
    TooLong(LineTooLong),
    Read(io::Error),
    Store(StoreError),
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::Line { line, error } => write!(f, "line {line}: {error}"),
            ImportError::TooLong(e) => write!(f, "{e}"),
            ImportError::Read(e) => write!(f, "reading the input failed: {e}"),
            ImportError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ImportError {}

impl From<LineTooLong> for ImportError {
    fn from(e: LineTooLong) -> Self {
        ImportError::TooLong(e)
    }
}

/// Streams lines from `input` into the store; blank lines are skipped. Every line before a bad
/// one is stored and durable when this returns, whatever it returns.
pub fn import(
    store: &Store,
    mut input: impl BufRead,
    limits: Limits,
    mut progress: impl FnMut(&ImportCounts),
) -> Result<ImportCounts, (ImportCounts, ImportError)> {
    let mut counts = ImportCounts::default();
    let result = (|| {
        let mut lines = Lines::new(limits.max_line);
        loop {
            let chunk = input.fill_buf().map_err(ImportError::Read)?;
            if chunk.is_empty() {
                return import_piece(store, &mut lines, None, limits, &mut counts);
            }
            let used = chunk.len();
            import_piece(store, &mut lines, Some(chunk), limits, &mut counts)?;
            input.consume(used);
            progress(&counts);
        }
    })();
    let synced = store.durable().map_err(ImportError::Store);
    match result.and(synced) {
        Ok(()) => Ok(counts),
        Err(e) => Err((counts, e)),
    }
}

/// Feeds the next piece of an NDJSON stream (None at its end) and stores the lines it
/// completes; not yet durable. The lines before an overlong one are stored first, as when a
/// line is invalid.
pub fn import_piece(
    store: &Store,
    lines: &mut Lines,
    piece: Option<&[u8]>,
    limits: Limits,
    counts: &mut ImportCounts,
) -> Result<(), ImportError> {
    let mut complete = Vec::new();
    let overlong = match piece {
        Some(piece) => lines.push(piece, &mut complete).err(),
        None => {
            complete.extend(lines.finish());
            None
        }
    };
    for (line_no, line) in complete {
        import_line(store, line_no, &line, limits, counts)?;
    }
    overlong.map_or(Ok(()), |e| Err(e.into()))
}

/// Checks line `line_no` whole, then stores it (blank lines are skipped); not yet durable.
fn import_line(
    store: &Store,
    line_no: u64,
    line: &[u8],
    limits: Limits,
    counts: &mut ImportCounts,
) -> Result<(), ImportError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let history = parse_line(line, limits).map_err(|error| ImportError::Line {
        line: line_no,
        error,
    })?;
    counts.add(store.import_server(&history).map_err(ImportError::Store)?);
    Ok(())
}

/// Actions read per step of an export: memory holds one chunk, whatever a history's length.
pub const EXPORT_CHUNK: usize = 1000;

/// Walks the whole store as NDJSON, one bounded chunk at a time: the CLI export writes the
/// chunks to a file, the HTTP export streams them.
#[derive(Debug, Default)]
pub struct Exporter {
    /// The server whose line is being written.
    server: Option<uuid::Uuid>,
    after_server: Option<uuid::Uuid>,
    /// The last action written of that server.
    after: Option<crate::store::keys::ActionKey>,
    servers: u64,
    done: bool,
}

impl Exporter {
    /// Appends the next chunk to `out`; false once everything has been written.
    pub fn next_chunk(&mut self, store: &Store, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        if self.done {
            return Ok(false);
        }
        let uuid = match self.server {
            Some(uuid) => uuid,
            None => match store.next_server_id(self.after_server.as_ref())? {
                Some((uuid, server)) => {
                    write_server_head(out, &uuid, &server);
                    self.server = Some(uuid);
                    self.after = None;
                    uuid
                }
                None => {
                    self.done = true;
                    return Ok(false);
                }
            },
        };
        let chunk = store.history_chunk(&uuid, self.after.as_ref(), EXPORT_CHUNK)?;
        for (key, (action, events)) in &chunk {
            write_action(out, self.after.is_none(), action, events);
            self.after = Some(*key);
        }
        if chunk.len() < EXPORT_CHUNK {
            write_server_tail(out);
            out.push(b'\n');
            self.server = None;
            self.after_server = Some(uuid);
            self.servers += 1;
        }
        Ok(true)
    }

    /// Server lines completed so far.
    pub fn servers(&self) -> u64 {
        self.servers
    }
}

/// Writes every server's history, one line each, in server id order.
pub fn export(store: &Store, mut out: impl Write) -> Result<u64, ExportError> {
    let mut exporter = Exporter::default();
    let mut buf = Vec::with_capacity(1 << 20);
    while exporter
        .next_chunk(store, &mut buf)
        .map_err(ExportError::Store)?
    {
        out.write_all(&buf).map_err(ExportError::Write)?;
        buf.clear();
    }
    out.flush().map_err(ExportError::Write)?;
    Ok(exporter.servers())
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

    /// The fast reader accepts only what the careful one accepts, with the same result.
    #[test]
    fn fast_and_careful_readers_agree() {
        let long = "x".repeat(256);
        let variants = [
            LINE.to_string(),
            LINE.replace(r#""updated_at":null,"#, ""),
            LINE.replace(r#""user_id":null"#, r#""user_id":"u""#),
            LINE.replace("2018-04-25T01:26:29.000000", "2018-04-25T03:26:29+02:00"),
            LINE.replace("2018-04-25T01:26:29.000000", "soon"),
            LINE.replace(
                r#""project_id":"p","user_id""#,
                r#""project_id":"","user_id""#,
            ),
            LINE.replace(r#""action":"create""#, &format!(r#""action":"{long}""#)),
            LINE.replace(r#""host":"h""#, r#""host":"h","deleted_at":null"#),
            LINE.replace(r#""deleted":false"#, r#""deleted":null"#),
            LINE.replace(r#""deleted":false"#, r#""deleted":"no""#),
            LINE.replace(r#""events":["#, r#""events":null,"x":["#),
            LINE.replace(
                r#""traceback":"line \"1\"\n""#,
                &format!(r#""traceback":"{}""#, "t".repeat(20)),
            ),
            LINE.replace(
                "a0000000-0000-4000-8000-000000000001",
                "A0000000-0000-4000-8000-000000000001",
            ),
            LINE.replace(r#""actions":["#, r#""actions":null,"y":["#),
            LINE.replace(r#""message":"Error""#, r#""message":5"#),
        ];
        let limits = Limits {
            max_text: 10,
            ..Limits::default()
        };
        for line in &variants {
            let careful = careful_parse_line(line.as_bytes(), limits);
            if let Some(fast) = fast::parse(line.as_bytes(), limits) {
                assert_eq!(careful.as_ref().ok(), Some(&fast), "{line}");
            }
            assert_eq!(parse_line(line.as_bytes(), limits), careful, "{line}");
        }
        assert!(
            fast::parse(LINE.as_bytes(), Limits::default()).is_some(),
            "the common case takes the fast path"
        );
    }

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

/// The common case of an import line, read straight into typed records: several times faster
/// than the field-by-field reader, which still runs whenever this one finds anything amiss, so
/// that every rejection keeps its precise message. It only ever accepts what that reader accepts,
/// with the same result (checked by `fast_and_careful_readers_agree`).
mod fast {
    use serde::{Deserialize, Deserializer};

    use super::*;
    use crate::input::{MAX_NAME, SERVER_STATUSES, is_valid_server_name};
    use crate::timeutil::parse_iso8601;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawServer {
        uuid: String,
        project_id: String,
        user_id: Option<String>,
        name: Option<String>,
        status: Option<String>,
        host: Option<String>,
        deleted: Option<bool>,
        created_at: Option<String>,
        updated_at: Option<String>,
        deleted_at: Option<String>,
        actions: Option<Vec<RawAction>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawAction {
        request_id: String,
        action: String,
        user_id: Option<String>,
        project_id: Option<String>,
        start_time: String,
        #[serde(default, deserialize_with = "present")]
        updated_at: Option<Option<String>>,
        finish_time: Option<String>,
        message: Option<String>,
        created_at: Option<String>,
        events: Option<Vec<RawEvent>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawEvent {
        event: String,
        start_time: Option<String>,
        finish_time: Option<String>,
        result: Option<String>,
        traceback: Option<String>,
        host: Option<String>,
        details: Option<String>,
        created_at: Option<String>,
    }

    /// Keeps "absent" (None) apart from "null" (Some(None)).
    fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }

    fn fits(s: &str, max: usize) -> bool {
        s.len() <= max || s.chars().count() <= max
    }

    fn name(s: String) -> Option<String> {
        (!s.is_empty() && fits(&s, MAX_NAME)).then_some(s)
    }

    fn opt_name(s: Option<String>) -> Option<Option<String>> {
        match s {
            Some(s) if !fits(&s, MAX_NAME) => None,
            other => Some(other),
        }
    }

    fn opt_text(s: Option<String>, limits: Limits) -> Option<Option<String>> {
        match s {
            Some(s) if !fits(&s, limits.max_text) => None,
            other => Some(other),
        }
    }

    fn time(s: &str) -> Option<Micros> {
        if s.len() > MAX_NAME {
            return None;
        }
        parse_iso8601(s)
    }

    fn opt_time(s: Option<String>) -> Option<Option<Micros>> {
        match s {
            Some(s) => time(&s).map(Some),
            None => Some(None),
        }
    }

    pub fn parse(line: &[u8], limits: Limits) -> Option<ServerHistory> {
        let raw: RawServer = serde_json::from_slice(line).ok()?;
        let uuid = server_uuid(&raw.uuid)?;
        let server = Server {
            project_id: name(raw.project_id)?,
            user_id: opt_name(raw.user_id)?,
            host: opt_name(raw.host)?,
            created_at: opt_time(raw.created_at)?,
            deleted: raw.deleted.unwrap_or(false),
            deleted_at: opt_time(raw.deleted_at)?,
            name: match raw.name {
                Some(n) if !fits(&n, MAX_NAME) || !is_valid_server_name(&n) => return None,
                other => other,
            },
            status: match raw.status {
                Some(s) if !SERVER_STATUSES.contains(&s.as_str()) => return None,
                other => other,
            },
            updated_at: opt_time(raw.updated_at)?,
            seq: 0,
        };
        let actions = raw
            .actions
            .unwrap_or_default()
            .into_iter()
            .map(|a| action(a, limits))
            .collect::<Option<_>>()?;
        Some(ServerHistory {
            uuid,
            server,
            actions,
        })
    }

    fn action(a: RawAction, limits: Limits) -> Option<(Action, Vec<Event>)> {
        let start_time = time(&a.start_time)?;
        let updated_at = match a.updated_at {
            None => Some(start_time),
            Some(None) => None,
            Some(Some(t)) => Some(time(&t)?),
        };
        let action = Action {
            request_id: name(a.request_id)?,
            action: name(a.action)?,
            user_id: opt_name(a.user_id)?,
            project_id: opt_name(a.project_id)?,
            start_time,
            finish_time: opt_time(a.finish_time)?,
            updated_at,
            message: opt_name(a.message)?,
            created_at: opt_time(a.created_at)?,
        };
        let events = a
            .events
            .unwrap_or_default()
            .into_iter()
            .map(|e| event(e, limits))
            .collect::<Option<_>>()?;
        Some((action, events))
    }

    fn event(e: RawEvent, limits: Limits) -> Option<Event> {
        Some(Event {
            event: name(e.event)?,
            start_time: opt_time(e.start_time)?,
            finish_time: opt_time(e.finish_time)?,
            result: opt_name(e.result)?,
            traceback: opt_text(e.traceback, limits)?,
            host: opt_name(e.host)?,
            details: opt_text(e.details, limits)?,
            created_at: opt_time(e.created_at)?,
        })
    }
}
