//! Write API bodies: whatever a body is, checking it never panics, and an accepted body, written
//! back as JSON, is accepted again as the same write (times, limits and nulls included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_actions::input::{Limits, MAX_NAME};
use nova_actions::timeutil::format_micros;
use nova_actions::write_request::{WriteOp, WriteRequest, parse_write};
use serde_json::{Map, Value, json};

const NOW: i64 = 1_700_000_000_123_456;

fn op(selector: u8) -> WriteOp {
    let request_id = "req-1".to_string();
    match selector % 7 {
        0 => WriteOp::Upsert,
        1 => WriteOp::Delete,
        2 => WriteOp::Purge,
        3 => WriteOp::StartAction,
        4 => WriteOp::FinishAction { request_id },
        5 => WriteOp::StartEvent { request_id },
        _ => WriteOp::FinishEvent {
            request_id,
            event: "compute_reboot".into(),
        },
    }
}

/// The body that states `request` exactly.
fn body_of(request: &WriteRequest) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    let time = |t: i64| json!(format_micros(t));
    match request {
        WriteRequest::Upsert(s) => {
            put("project_id", json!(s.project_id));
            put("user_id", json!(s.user_id));
            put("host", json!(s.host));
            put("created_at", json!(s.created_at.map(format_micros)));
        }
        WriteRequest::Delete { deleted_at } => put("deleted_at", time(*deleted_at)),
        WriteRequest::Purge => {}
        WriteRequest::StartAction(a) => {
            put("request_id", json!(a.request_id));
            put("action", json!(a.action));
            put("user_id", json!(a.user_id));
            put("project_id", json!(a.project_id));
            if a.time_given {
                put("start_time", time(a.start_time));
            }
        }
        WriteRequest::FinishAction {
            finish_time,
            time_given,
            ..
        } => {
            if *time_given {
                put("finish_time", time(*finish_time));
            }
        }
        WriteRequest::StartEvent(e) => {
            put("event", json!(e.event));
            put("host", json!(e.host));
            put("details", json!(e.details));
            put("fallback_to_last_action", json!(e.fallback_to_last_action));
            if e.time_given {
                put("start_time", time(e.start_time));
            }
        }
        WriteRequest::FinishEvent(e) => {
            put("result", json!(e.result));
            put("traceback", json!(e.traceback));
            put("details", json!(e.details));
            put("fallback_to_last_action", json!(e.fallback_to_last_action));
            if e.time_given {
                put("finish_time", time(e.finish_time));
            }
        }
    }
    Value::Object(m)
}

/// The time of a write that did not name one.
fn defaulted_time(request: &WriteRequest) -> Option<i64> {
    match request {
        WriteRequest::StartAction(a) if !a.time_given => Some(a.start_time),
        WriteRequest::FinishAction {
            finish_time,
            time_given: false,
            ..
        } => Some(*finish_time),
        WriteRequest::StartEvent(e) if !e.time_given => Some(e.start_time),
        WriteRequest::FinishEvent(e) if !e.time_given => Some(e.finish_time),
        _ => None,
    }
}

/// The required names of a write (never empty) and the optional ones (may be empty, as Nova's
/// hosts can be).
fn names(request: &WriteRequest) -> (Vec<&str>, Vec<&str>) {
    fn opt<'a>(v: &[&'a Option<String>]) -> Vec<&'a str> {
        v.iter().filter_map(|o| o.as_deref()).collect()
    }
    match request {
        WriteRequest::Upsert(s) => (vec![&s.project_id], opt(&[&s.user_id, &s.host])),
        WriteRequest::StartAction(a) => (
            vec![&a.request_id, &a.action],
            opt(&[&a.user_id, &a.project_id]),
        ),
        WriteRequest::StartEvent(e) => (vec![&e.event], opt(&[&e.host])),
        WriteRequest::FinishEvent(e) => (vec![&e.result], Vec::new()),
        _ => (Vec::new(), Vec::new()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let limits = Limits { max_text: 1024, ..Limits::default() };
    let Ok(request) = parse_write(op(selector), body, limits, NOW) else {
        return;
    };
    let (required, optional) = names(&request);
    for name in required {
        assert!(!name.is_empty() && name.chars().count() <= MAX_NAME, "{name:?}");
    }
    for name in optional {
        assert!(name.chars().count() <= MAX_NAME, "{name:?}");
    }
    if let Some(time) = defaulted_time(&request) {
        assert_eq!(time, NOW, "a time not given is now");
    }
    let again = serde_json::to_vec(&body_of(&request)).unwrap();
    let reparsed = parse_write(op(selector), &again, limits, NOW).unwrap_or_else(|e| {
        panic!("{} was accepted as {request:?}, but {} fails: {e}", String::from_utf8_lossy(body), String::from_utf8_lossy(&again))
    });
    assert_eq!(reparsed, request, "{}", String::from_utf8_lossy(&again));
});
