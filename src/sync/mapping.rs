//! Nova's JSON, as its API serves it to an admin, read back into the records this service
//! stores. What Nova's API does not show (an action's `finish_time`, rows' `created_at`) stays
//! unset, and so is not shown by the mirror either.

use serde_json::Value;

use crate::input::SERVER_STATUSES;
use crate::model::{Action, Event, Server};
use crate::timeutil::{Micros, parse_iso8601};

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

fn text<'a>(doc: &'a Value, key: &str) -> Result<&'a str, Unreadable> {
    doc.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Unreadable(format!("no string '{key}' in {}", excerpt(doc))))
}

fn opt_text(doc: &Value, key: &str) -> Option<String> {
    doc.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A string exactly as Nova shows it (an empty one stays empty), or None for null.
fn exact(doc: &Value, key: &str) -> Option<String> {
    doc.get(key).and_then(Value::as_str).map(str::to_string)
}

fn time(doc: &Value, key: &str) -> Result<Option<Micros>, Unreadable> {
    match doc.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_iso8601(s)
            .map(Some)
            .ok_or_else(|| Unreadable(format!("'{key}' is not a time: {s}"))),
        Some(other) => Err(Unreadable(format!("'{key}' is not a time: {other}"))),
    }
}

fn excerpt(doc: &Value) -> String {
    crate::input::excerpt(&doc.to_string()).into_owned()
}

/// A server of `GET /servers/detail` (or show) as an admin sees it: its id and record.
pub fn server(doc: &Value) -> Result<(uuid::Uuid, Server), Unreadable> {
    let id_text = text(doc, "id")?;
    let id = crate::input::server_uuid(id_text)
        .ok_or_else(|| Unreadable(format!("not a server id: {id_text}")))?;
    let status = text(doc, "status")?;
    let deleted = status == "DELETED";
    let updated_at = time(doc, "updated")?;
    let server = Server {
        project_id: text(doc, "tenant_id")?.to_string(),
        user_id: opt_text(doc, "user_id"),
        host: opt_text(doc, "OS-EXT-SRV-ATTR:host"),
        created_at: time(doc, "created")?,
        deleted,
        // Nova's document has no deletion time; a deleted server's last update is its
        // deletion (its `terminated_at` when Nova recorded one).
        deleted_at: match deleted {
            true => time(doc, "OS-SRV-USG:terminated_at")?.or(updated_at),
            false => None,
        },
        name: opt_text(doc, "name"),
        status: (SERVER_STATUSES.contains(&status) && !deleted).then(|| status.to_string()),
        updated_at,
        seq: 0,
    };
    Ok((id, server))
}

/// An action of `GET .../os-instance-actions/{request_id}` with its events (stored oldest
/// first; Nova shows them newest first).
pub fn action(doc: &Value) -> Result<(Action, Vec<Event>), Unreadable> {
    let start_time = time(doc, "start_time")?
        .ok_or_else(|| Unreadable(format!("no start_time in {}", excerpt(doc))))?;
    let action = Action {
        request_id: text(doc, "request_id")?.to_string(),
        action: text(doc, "action")?.to_string(),
        user_id: exact(doc, "user_id"),
        project_id: exact(doc, "project_id"),
        start_time,
        finish_time: None,
        // Before 2.58 Nova does not show it; an action start sets it to the start time.
        updated_at: match doc.get("updated_at") {
            None => Some(start_time),
            Some(_) => time(doc, "updated_at")?,
        },
        message: exact(doc, "message"),
        created_at: None,
    };
    let mut events = Vec::new();
    for e in doc
        .get("events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        events.push(Event {
            event: text(e, "event")?.to_string(),
            start_time: time(e, "start_time")?,
            finish_time: time(e, "finish_time")?,
            result: exact(e, "result"),
            traceback: exact(e, "traceback"),
            host: exact(e, "host"),
            details: exact(e, "details"),
            created_at: None,
        });
    }
    events.reverse();
    Ok((action, events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_server_document_as_nova_shows_it_to_an_admin() {
        let doc = json!({
            "created": "2019-03-01T10:00:00Z", "hostId": "6d23", "id": "a0000000-0000-4000-8000-000000000001",
            "name": "web-1", "status": "SHUTOFF", "tenant_id": "proj-a", "user_id": "user-a",
            "updated": "2019-03-01T10:00:30Z", "OS-SRV-USG:terminated_at": null,
            "OS-EXT-SRV-ATTR:host": "compute-1", "flavor": {"id": "1"}
        });
        let (id, s) = server(&doc).unwrap();
        assert_eq!(id.to_string(), "a0000000-0000-4000-8000-000000000001");
        assert_eq!(
            (
                s.project_id.as_str(),
                s.host.as_deref(),
                s.status.as_deref(),
                s.deleted
            ),
            ("proj-a", Some("compute-1"), Some("SHUTOFF"), false)
        );
        assert_eq!(s.created_at, parse_iso8601("2019-03-01T10:00:00Z"));
        let mut gone = doc.clone();
        gone["status"] = json!("DELETED");
        gone["OS-SRV-USG:terminated_at"] = json!("2019-03-09T10:00:00.000000");
        let (_, s) = server(&gone).unwrap();
        assert!(s.deleted && s.status.is_none());
        assert_eq!(s.deleted_at, parse_iso8601("2019-03-09T10:00:00"));
        assert!(server(&json!({"id": "x", "status": "ACTIVE"})).is_err());
    }

    #[test]
    fn an_action_with_its_events_oldest_first() {
        let doc = json!({"instanceAction": {
        "action": "reboot", "instance_uuid": "a0000000-0000-4000-8000-000000000001",
        "request_id": "req-1", "user_id": "u", "project_id": "p",
        "start_time": "2018-04-25T01:26:29.000000", "message": "Error",
        "updated_at": "2018-04-25T01:26:36.000000",
        "events": [
            {"event": "b", "start_time": "2018-04-25T01:26:31.000000", "finish_time": null,
             "result": null, "traceback": null, "host": "c1", "hostId": "x", "details": null},
            {"event": "a", "start_time": "2018-04-25T01:26:30.000000",
             "finish_time": "2018-04-25T01:26:36.000000", "result": "Error",
             "traceback": "Traceback…", "host": "c1", "hostId": "x", "details": "d"}
        ]}});
        let (a, events) = action(&doc["instanceAction"]).unwrap();
        assert_eq!(
            (a.request_id.as_str(), a.message.as_deref()),
            ("req-1", Some("Error"))
        );
        assert_eq!(a.updated_at, parse_iso8601("2018-04-25T01:26:36"));
        let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(events[0].traceback.as_deref(), Some("Traceback…"));
        let mut old = doc["instanceAction"].clone();
        old.as_object_mut().unwrap().remove("updated_at");
        assert_eq!(action(&old).unwrap().0.updated_at, Some(a.start_time));
    }
}
