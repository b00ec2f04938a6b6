//! The testing API under `/ingest/v1/testing/` (admins only; 404 as if absent when `[testing]`
//! has it off): fault rules (`faults`, `faults/{id}`) and the request journal (`requests`),
//! and how an injected fault is answered.

use actix_web::{HttpResponse, web};

use super::fault::Fault;
use super::reply::{self, Reply};
use super::{Call, ingest};
use crate::policy;
use crate::testing::faults::{Answer, Request, RuleSpec};
use crate::testing::journal::{Entry, bounded, mask};

pub const PREFIX: &str = "/ingest/v1/testing";

/// Whether a path is the testing API's own (never faulted, never journaled).
pub fn is_testing(path: &str) -> bool {
    path == PREFIX || path.starts_with("/ingest/v1/testing/")
}

pub async fn handle(call: &Call<'_>, rest: &str, payload: &mut web::Payload) -> HttpResponse {
    let testing = &call.state.testing;
    let wanted = match rest.split('/').next() {
        Some("faults") => testing.faults.is_some(),
        Some("requests") => testing.journal.is_some(),
        _ => false,
    };
    if !wanted {
        // Off (or unknown): exactly what the ingest API says of a path it does not have.
        return ingest::handle(call, &format!("testing/{rest}"), payload).await;
    }
    call.route.set("testing");
    let caller = match call.authenticate().await {
        Ok(caller) => caller,
        Err(answer) => return answer,
    };
    if !caller.is_admin() {
        return call
            .fail(Fault::Forbidden(policy::CONTEXT_IS_ADMIN))
            .finish();
    }
    let method = call.req.method().as_str();
    let result = match (method, rest) {
        ("POST", "faults") => add_rule(call, payload).await,
        ("GET", "faults") => Ok(json(200, &serde_json::json!({ "faults": rules(call) }))),
        ("DELETE", "faults") => {
            if let Some(f) = &testing.faults {
                f.clear();
            }
            Ok(Reply::new(204, None, Vec::new()))
        }
        ("GET", "requests") => Ok(json(
            200,
            &serde_json::json!({ "requests": testing.journal.as_ref().map(crate::testing::journal::Journal::entries) }),
        )),
        ("DELETE", "requests") => {
            if let Some(j) = &testing.journal {
                j.clear();
            }
            Ok(Reply::new(204, None, Vec::new()))
        }
        ("DELETE", one) if one.starts_with("faults/") => remove_rule(call, &one["faults/".len()..]),
        _ => Err(Fault::NoSuchResource),
    };
    match result {
        Ok(reply) => reply.request_id(&call.request_id).finish(),
        Err(fault) => call.fail(fault).finish(),
    }
}

fn json(status: u16, value: &serde_json::Value) -> Reply {
    let body = serde_json::to_vec(value).expect("JSON values serialize");
    Reply::json(status, "application/json", body)
}

fn rules(call: &Call<'_>) -> serde_json::Value {
    let shown = call
        .state
        .testing
        .faults
        .as_ref()
        .map(crate::testing::faults::Faults::list)
        .unwrap_or_default();
    serde_json::to_value(shown).expect("rules serialize")
}

async fn add_rule(call: &Call<'_>, payload: &mut web::Payload) -> Result<Reply, Fault> {
    let body = ingest::read_body(call, payload).await?;
    let spec: RuleSpec = serde_json::from_slice(&body)
        .map_err(|e| Fault::BadRequest(format!("Invalid fault rule: {e}")))?;
    let faults = faults_of(call)?;
    let shown = faults
        .add(spec)
        .map_err(|e| Fault::BadRequest(e.to_string()))?;
    log::warn!("fault rule {} added: {:?}", shown.id, shown.spec);
    Ok(json(
        201,
        &serde_json::json!({ "fault": serde_json::to_value(shown).expect("rules serialize") }),
    ))
}

fn faults_of<'a>(call: &'a Call<'_>) -> Result<&'a crate::testing::faults::Faults, Fault> {
    call.state
        .testing
        .faults
        .as_ref()
        .ok_or(Fault::NoSuchResource)
}

fn remove_rule(call: &Call<'_>, id: &str) -> Result<Reply, Fault> {
    let faults = faults_of(call)?;
    let removed = id.parse::<u64>().is_ok_and(|id| faults.remove(id));
    if !removed {
        return Err(Fault::RuleNotFound(crate::input::excerpt(id).into_owned()));
    }
    Ok(Reply::new(204, None, Vec::new()))
}

/// The microversion a request asked for, as sent.
fn requested_version(call: &Call<'_>) -> Option<String> {
    if let Some(v) = call.header("openstack-api-version") {
        return Some(
            v.trim()
                .strip_prefix("compute")
                .unwrap_or(v)
                .trim()
                .to_string(),
        );
    }
    call.header("x-openstack-nova-api-version")
        .map(|v| v.trim().to_string())
}

/// The rule that takes this request, if fault injection is on and one does.
pub fn injected(call: &Call<'_>) -> Option<(u64, Answer)> {
    let faults = call.state.testing.faults.as_ref()?;
    if is_testing(&call.path) {
        return None;
    }
    let version = requested_version(call);
    faults.decide(&Request {
        method: call.method.as_str(),
        path: &call.path,
        microversion: version.as_deref(),
        token: call.header("x-auth-token"),
    })
}

/// What a rule answers instead of the service (a delay is not an answer: the caller waits,
/// then serves).
pub fn answer(call: &Call<'_>, answer: &Answer) -> HttpResponse {
    match answer {
        Answer::Fault {
            status: 401,
            message,
            ..
        } => reply::unauthorized(message, &call.state.config.www_authenticate_uri())
            .request_id(&call.request_id)
            .finish(),
        Answer::Fault {
            status,
            message,
            retry_after,
        } => {
            let mut reply = reply::fault(*status, message).request_id(&call.request_id);
            if let Some(secs) = retry_after {
                reply = reply.header("retry-after", secs.to_string());
            }
            reply.finish()
        }
        Answer::Drop | Answer::Delay(_) => dropped(),
    }
}

/// A connection closed before any answer: the body fails before its first byte, and actix
/// then closes the connection without writing the head it had prepared.
fn dropped() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("connection", "close"))
        .streaming(failing_body())
}

fn failing_body() -> impl futures_core::Stream<Item = Result<web::Bytes, std::io::Error>> + 'static
{
    struct Failing;
    impl futures_core::Stream for Failing {
        type Item = Result<web::Bytes, std::io::Error>;
        fn poll_next(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(Some(Err(std::io::Error::other(
                "connection dropped on purpose",
            ))))
        }
    }
    Failing
}

/// One journal line for a request that was answered.
pub fn journal(call: &Call<'_>, status: u16, request_id: &str, elapsed_ms: f64) {
    let Some(journal) = &call.state.testing.journal else {
        return;
    };
    if is_testing(&call.path) {
        return;
    }
    let header = |name: &str| call.header(name).map(bounded);
    journal.record(Entry {
        time: format!(
            "{}Z",
            crate::timeutil::format_micros(crate::timeutil::now_micros())
        ),
        method: call.req.method().as_str().to_string(),
        path: bounded(call.req.path()),
        query: bounded(call.req.query_string()),
        microversion: header("openstack-api-version"),
        legacy_microversion: header("x-openstack-nova-api-version"),
        token: call.header("x-auth-token").map(mask),
        // A dropped connection had no answer.
        status: match call.injected.get() {
            Some((_, "drop")) => 0,
            _ => status,
        },
        request_id: request_id.to_string(),
        duration_ms: elapsed_ms,
        injected: call.injected.get().map(|(rule, _)| rule),
    });
}
