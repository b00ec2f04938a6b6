//! The bodies of the write API (`/ingest/v1/servers/...`), checked field by field into the
//! store's write requests. Pure: the HTTP layer routes and reads the body, this decides what it
//! means, so that the rules can be tested and fuzzed without a server.

use serde_json::Map;

use crate::input::{Fields, Limits, Result, parse_object};
use crate::store::{ActionStart, EventFinish, EventStart, ServerFields};
use crate::timeutil::Micros;

/// A write the URL names; ids from the URL travel with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Upsert,
    Delete,
    Purge,
    StartAction,
    FinishAction { request_id: String },
    StartEvent { request_id: String },
    FinishEvent { request_id: String, event: String },
}

/// A checked write, ready for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteRequest {
    Upsert(ServerFields),
    Delete {
        deleted_at: Micros,
    },
    Purge,
    StartAction(ActionStart),
    FinishAction {
        request_id: String,
        finish_time: Micros,
        time_given: bool,
    },
    StartEvent(EventStart),
    FinishEvent(EventFinish),
}

/// Reads `body` (empty or whitespace: `{}`) as the write `op`; times not given are `now`.
pub fn parse_write(op: WriteOp, body: &[u8], limits: Limits, now: Micros) -> Result<WriteRequest> {
    let map = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        parse_object(body)?
    };
    let f = Fields::new(&map, "", limits);
    let time = |key: &str| -> Result<(Micros, bool)> {
        let given = f.opt_time(key)?;
        Ok((given.unwrap_or(now), given.is_some()))
    };
    Ok(match op {
        WriteOp::Upsert => {
            f.only(&[
                "project_id",
                "user_id",
                "name",
                "status",
                "host",
                "created_at",
                "updated_at",
            ])?;
            WriteRequest::Upsert(ServerFields {
                project_id: f.name("project_id")?,
                user_id: f.opt_name("user_id")?,
                host: f.opt_name("host")?,
                created_at: f.opt_time("created_at")?,
                name: f.opt_server_name("name")?,
                status: f.opt_server_status("status")?,
                updated_at: f.opt_time("updated_at")?,
                written_at: now,
            })
        }
        WriteOp::Delete => {
            f.only(&["deleted_at"])?;
            WriteRequest::Delete {
                deleted_at: time("deleted_at")?.0,
            }
        }
        WriteOp::Purge => {
            f.only(&[])?;
            WriteRequest::Purge
        }
        WriteOp::StartAction => {
            f.only(&[
                "request_id",
                "action",
                "user_id",
                "project_id",
                "start_time",
            ])?;
            let (start_time, time_given) = time("start_time")?;
            WriteRequest::StartAction(ActionStart {
                request_id: f.name("request_id")?,
                action: f.name("action")?,
                user_id: f.opt_name("user_id")?,
                project_id: f.opt_name("project_id")?,
                start_time,
                time_given,
            })
        }
        WriteOp::FinishAction { request_id } => {
            f.only(&["finish_time"])?;
            let (finish_time, time_given) = time("finish_time")?;
            WriteRequest::FinishAction {
                request_id,
                finish_time,
                time_given,
            }
        }
        WriteOp::StartEvent { request_id } => {
            f.only(&[
                "event",
                "host",
                "details",
                "start_time",
                "fallback_to_last_action",
            ])?;
            let (start_time, time_given) = time("start_time")?;
            WriteRequest::StartEvent(EventStart {
                request_id,
                event: f.name("event")?,
                host: f.opt_name("host")?,
                details: f.opt_text("details")?,
                start_time,
                time_given,
                fallback_to_last_action: f.bool_or("fallback_to_last_action", false)?,
            })
        }
        WriteOp::FinishEvent { request_id, event } => {
            f.only(&[
                "result",
                "traceback",
                "details",
                "finish_time",
                "fallback_to_last_action",
            ])?;
            let (finish_time, time_given) = time("finish_time")?;
            WriteRequest::FinishEvent(EventFinish {
                request_id,
                event,
                result: f.name("result")?,
                traceback: f.opt_text("traceback")?,
                details: f.opt_text("details")?,
                finish_time,
                time_given,
                fallback_to_last_action: f.bool_or("fallback_to_last_action", false)?,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Micros = 1_000_000;

    fn parse(op: WriteOp, body: &str) -> Result<WriteRequest> {
        parse_write(op, body.as_bytes(), Limits::default(), NOW)
    }

    #[test]
    fn times_not_given_are_now_and_marked_so() {
        let finish = WriteOp::FinishAction {
            request_id: "req-1".into(),
        };
        assert_eq!(
            parse(finish.clone(), " \n"),
            Ok(WriteRequest::FinishAction {
                request_id: "req-1".into(),
                finish_time: NOW,
                time_given: false
            })
        );
        assert_eq!(
            parse(finish, r#"{"finish_time": "1970-01-01T00:00:02Z"}"#),
            Ok(WriteRequest::FinishAction {
                request_id: "req-1".into(),
                finish_time: 2_000_000,
                time_given: true
            })
        );
        let Ok(WriteRequest::Upsert(s)) = parse(WriteOp::Upsert, r#"{"project_id": "p"}"#) else {
            panic!("an upsert with a project is valid");
        };
        // A server's creation time is kept on later writes: only a new one is created now.
        assert_eq!((s.created_at, s.written_at), (None, NOW));
    }

    #[test]
    fn rejections_name_the_field() {
        let e = parse(WriteOp::StartAction, r#"{"request_id": "r", "action": 5}"#).unwrap_err();
        assert!(e.0.contains("action"), "{e}");
        let e = parse(WriteOp::Purge, r#"{"force": true}"#).unwrap_err();
        assert!(e.0.contains("force"), "{e}");
        let e = parse(WriteOp::Delete, "[]").unwrap_err();
        assert_eq!(e.0, "The request body must be a JSON object, not an array.");
    }
}
