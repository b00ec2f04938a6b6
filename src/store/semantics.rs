//! Nova's write rules, stated once: both backends read a record, apply one of these, and store
//! the result in one transaction under the server's lock, so they cannot drift apart.

use super::{ActionStart, EventFinish, EventStart, Result, ServerFields, StoreError};
use crate::model::{Action, Event, Server};
use crate::timeutil::Micros;

/// A server upsert: the fields given replace the stored ones, except that a creation time is
/// kept when none is given (a new server without one is created now) and the soft-delete
/// state is never touched. `updated_at` moves only when something else changed, unless the
/// caller names it. `seq` is the registration number a new server gets.
pub fn upserted_server(old: Option<&Server>, fields: &ServerFields, seq: u64) -> Server {
    let mut server = Server {
        project_id: fields.project_id.clone(),
        user_id: fields.user_id.clone(),
        host: fields.host.clone(),
        created_at: fields
            .created_at
            .or(old.and_then(|o| o.created_at))
            .or(old.is_none().then_some(fields.written_at)),
        deleted: old.is_some_and(|o| o.deleted),
        deleted_at: old.and_then(|o| o.deleted_at),
        name: fields.name.clone(),
        status: fields.status.clone(),
        updated_at: old.and_then(|o| o.updated_at),
        seq: old.map_or(seq, |o| o.seq),
    };
    server.updated_at = match (fields.updated_at, old) {
        (Some(given), _) => Some(given),
        (None, Some(old)) if *old == server => old.updated_at,
        (None, _) => Some(fields.written_at),
    };
    server
}

/// Soft-deletes `server` at `at`; false when it already was (the first deletion time stays).
/// Nova saves the instance as deleted just before it soft-deletes the row: `updated_at`
/// becomes the deletion time, so `changes-since` finds the deletion.
pub fn soft_delete(server: &mut Server, at: Micros) -> bool {
    if server.deleted {
        return false;
    }
    server.deleted = true;
    server.deleted_at = Some(at);
    server.updated_at = Some(at);
    true
}

/// An imported server line: stored as given, keeping the registration number of the server
/// it replaces.
pub fn imported_server(old: Option<&Server>, line: &Server, seq: u64) -> Server {
    Server {
        seq: old.map_or(seq, |o| o.seq),
        ..line.clone()
    }
}

/// A retried action start names the same action; without an explicit time, the request id,
/// name and requester are what identify it.
pub fn is_retry_of(existing: &Action, start: &ActionStart) -> bool {
    existing.action == start.action
        && existing.user_id == start.user_id
        && existing.project_id == start.project_id
        && (!start.time_given || existing.start_time == start.start_time)
}

/// The action an action start records.
pub fn started_action(start: &ActionStart) -> Action {
    Action {
        request_id: start.request_id.clone(),
        action: start.action.clone(),
        user_id: start.user_id.clone(),
        project_id: start.project_id.clone(),
        start_time: start.start_time,
        finish_time: None,
        updated_at: Some(start.start_time),
        message: None,
        created_at: None,
    }
}

/// Finishes an action; false for a retry of a finish already recorded.
pub fn finish_action(action: &mut Action, finish_time: Micros, time_given: bool) -> bool {
    if action.finish_time.is_some() && (!time_given || action.finish_time == Some(finish_time)) {
        return false;
    }
    action.finish_time = Some(finish_time);
    action.updated_at = Some(finish_time);
    true
}

/// Adds a started event to an action's events; false for a retry of one already there.
pub fn start_event(events: &mut Vec<Event>, start: &EventStart) -> bool {
    let retry = events.iter().any(|e| {
        e.event == start.event
            && e.host == start.host
            && if start.time_given {
                e.start_time == Some(start.start_time)
            } else {
                e.finish_time.is_none()
            }
    });
    if !retry {
        events.push(Event {
            event: start.event.clone(),
            start_time: Some(start.start_time),
            finish_time: None,
            result: None,
            traceback: None,
            host: start.host.clone(),
            details: start.details.clone(),
            created_at: None,
        });
    }
    !retry
}

/// Finishes the oldest event of that name, as Nova does; an `Error` result marks the action.
/// False for a retry of a finish already recorded.
pub fn finish_event(
    action: &mut Action,
    events: &mut [Event],
    finish: &EventFinish,
) -> Result<bool> {
    let Some(event) = events.iter_mut().find(|e| e.event == finish.event) else {
        return Err(StoreError::EventNotFound {
            event: finish.event.clone(),
            request_id: finish.request_id.clone(),
        });
    };
    let same = event.result.as_deref() == Some(finish.result.as_str())
        && event.traceback == finish.traceback
        && event.details == finish.details
        && (!finish.time_given || event.finish_time == Some(finish.finish_time));
    if same && event.finish_time.is_some() {
        return Ok(false);
    }
    event.finish_time = Some(finish.finish_time);
    event.result = Some(finish.result.clone());
    event.traceback = finish.traceback.clone();
    event.details = finish.details.clone();
    if finish.result.eq_ignore_ascii_case("error") {
        action.message = Some("Error".to_string());
    }
    Ok(true)
}
