//! The HTTP layer. One entry point sees every request and routes it itself, because Nova's
//! routing quirks (collapsed slashes, 404 for every other method, `?_method=`, the order in
//! which auth, routing and versions are checked) are part of the contract.

mod accept;
mod actions;
mod call;
mod caller;
mod docs;
pub mod fault;
mod forwarded;
mod ingest;
mod ops;
mod query;
mod reply;
mod servers;
mod stream;
mod testing;
pub mod version;
pub mod view;

use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::pytext::percent_decode;
pub use call::{AppState, Call};
use fault::Fault;
use reply::{Reply, new_request_id};
use version::Version;

/// This service's OpenAPI 3.1 description (`src/api/openapi.json`), served at `/openapi.json`
/// and printed by `nova-actions openapi`. A new route goes into that document too, and into the
/// route list of `tests/integration/openapi.rs`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Counts a request as in flight for as long as it lives, cancellation included.
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<std::sync::atomic::AtomicUsize>) -> InFlight {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlight(Arc::clone(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.default_service(web::to(dispatch));
}

/// Webob decodes the path before routing, so `%2F` separates segments like `/` does.
fn normalized_path(raw: &str) -> String {
    let decoded = String::from_utf8_lossy(&percent_decode(raw.as_bytes())).into_owned();
    let mut out = String::with_capacity(decoded.len());
    for c in decoded.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    out
}

/// Routes' `_method` override: a `_method` query parameter replaces the request's method.
fn effective_method(req: &HttpRequest) -> Method {
    let raw = req.query_string();
    if raw.contains("_method") {
        let pairs = crate::pytext::parse_query_lossy(raw.as_bytes());
        if let Some((_, m)) = pairs.iter().rev().find(|(k, _)| k == "_method") {
            if let Ok(method) = Method::from_bytes(m.to_uppercase().as_bytes()) {
                return method;
            }
        }
    }
    req.method().clone()
}

async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let _in_flight = InFlight::enter(&state.in_flight);
    let call = Call {
        req: &req,
        state: &state,
        request_id: new_request_id(),
        method: effective_method(&req),
        path: normalized_path(req.uri().path()),
        route: Cell::new("other"),
        version: Cell::new(None),
        injected: Cell::new(None),
    };
    let mut payload = payload;
    let response = match testing::injected(&call) {
        None => answer(&call, &mut payload).await,
        Some((rule, fault)) => {
            call.injected.set(Some((rule, fault.label())));
            call.route.set("injected");
            if let crate::testing::faults::Answer::Delay(wait) = fault {
                actix_web::rt::time::sleep(wait).await;
                answer(&call, &mut payload).await
            } else {
                testing::answer(&call, &fault)
            }
        }
    };
    let response = reply::hang_up_unread(response, payload);
    observe(&call, &response, started);
    response
}

async fn answer(call: &Call<'_>, payload: &mut web::Payload) -> HttpResponse {
    if call.req.method() == Method::OPTIONS {
        call.route.set("options");
        return HttpResponse::Ok().finish();
    }
    let path = call.path.clone();
    match path.as_str() {
        "" | "/" | "/v2" | "/v2/" | "/v2.1" | "/v2.1/" => {
            call.route.set("versions");
            match path.as_str() {
                "" | "/" => docs::root(call),
                "/v2" | "/v2/" => docs::v2(call),
                _ => docs::v21(call),
            }
        }
        "/healthcheck" => ops::healthcheck(call).await,
        "/openapi.json" => ops::openapi(call),
        "/metrics" => ops::metrics(call).await,
        p if p == "/ui" || p.starts_with("/ui/") => crate::ui::answer(call, p),
        p if p.starts_with("/v2.1/") => nova_api(call, &p["/v2.1/".len()..], false).await,
        p if p.starts_with("/v2/") => nova_api(call, &p["/v2/".len()..], true).await,
        p if testing::is_testing(p) => {
            let rest = p.strip_prefix(testing::PREFIX).unwrap_or("");
            testing::handle(call, rest.trim_start_matches('/'), payload).await
        }
        p if p.starts_with("/ingest/v1/") => {
            call.route.set("ingest");
            ingest::handle(call, &p["/ingest/v1/".len()..], payload).await
        }
        p => {
            call.route.set("choices");
            docs::choices(call, p)
        }
    }
}

/// One access-log line and the request metrics. The query string stays out of the log: it is
/// the caller's text and may carry anything.
fn observe(call: &Call<'_>, response: &HttpResponse, started: Instant) {
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let bytes = match actix_web::body::MessageBody::size(response.body()) {
        actix_web::body::BodySize::Sized(n) => n.to_string(),
        _ => "-".to_string(),
    };
    let request_id = response
        .headers()
        .get("x-openstack-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let injected = match call.injected.get() {
        Some((rule, what)) => format!(" injected:{what}:rule-{rule}"),
        None => String::new(),
    };
    log::info!(
        target: "access",
        "{request_id} {} {} {status} {bytes} {:.3}ms{injected}",
        call.req.method(),
        call.req.path(),
        elapsed.as_secs_f64() * 1000.0
    );
    testing::journal(call, status, request_id, elapsed.as_secs_f64() * 1000.0);
    call.state.metrics.record(&crate::metrics::Observed {
        route: call.route.get(),
        method: call.req.method().as_str(),
        status,
        version: call.version.get().map(|v| v.0),
        elapsed,
    });
}

/// A request for the compute API, under `/v2.1/` or (legacy) `/v2/`.
struct ApiRoute<'p> {
    project: Option<&'p str>,
    target: Target<'p>,
}

#[derive(Debug, PartialEq, Eq)]
enum Target<'p> {
    Actions {
        server: &'p str,
        request_id: Option<&'p str>,
    },
    Servers(servers::Listing),
    Server(&'p str),
}

fn route(rest: &str) -> Option<ApiRoute<'_>> {
    let segments: Vec<&str> = rest.split('/').collect();
    let (project, tail) = match segments.as_slice() {
        [p, "servers", tail @ ..] if is_project_id(p) => (Some(*p), tail),
        ["servers", tail @ ..] => (None, tail),
        _ => return None,
    };
    let target = match tail {
        [] => Target::Servers(servers::Listing::Index),
        ["detail"] => Target::Servers(servers::Listing::Detail),
        [server] if !server.is_empty() => Target::Server(server),
        [server, "os-instance-actions"] if !server.is_empty() => Target::Actions {
            server,
            request_id: None,
        },
        [server, "os-instance-actions", rid] if !server.is_empty() && !rid.is_empty() => {
            Target::Actions {
                server,
                request_id: Some(rid),
            }
        }
        _ => return None,
    };
    Some(ApiRoute { project, target })
}

fn is_project_id(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
}

async fn nova_api(call: &Call<'_>, rest: &str, legacy: bool) -> HttpResponse {
    let caller = match call.authenticate().await {
        Ok(caller) => caller,
        Err(answer) => return answer,
    };
    let Some(route) = route(rest).filter(|_| call.method == Method::GET) else {
        call.route.set("route_miss");
        return call.route_miss();
    };
    call.route.set(match route.target {
        Target::Actions {
            request_id: Some(_),
            ..
        } => "show",
        Target::Actions { .. } => "list",
        Target::Servers(_) => "servers",
        Target::Server(_) => "server",
    });
    let version = if legacy {
        None
    } else {
        match call.negotiate_version() {
            Ok(v) => Some(v),
            Err(answer) => return answer,
        }
    };
    call.version.set(version);
    let answer = |reply: Reply| {
        reply
            .request_id(&call.request_id)
            .versioned_opt(version.map(Into::into))
            .finish()
    };
    if let Some(ct) = call.header("content-type") {
        let media = ct.split(';').next().unwrap_or("").trim();
        if !media.is_empty() && ![reply::JSON, reply::COMPUTE_JSON, "text/plain"].contains(&media) {
            return answer(call.fail(Fault::UnsupportedMediaType));
        }
    }
    if let Some(url_project) = route.project {
        if Some(url_project) != caller.project() {
            return answer(call.fail(Fault::ProjectMismatch {
                url: url_project.to_string(),
                caller: caller.project().map(str::to_string),
            }));
        }
    }
    let version_or_default = version.unwrap_or(Version::DEFAULT);
    let result = match route.target {
        Target::Actions { server, request_id } => {
            let request = actions::Request {
                call,
                caller: &caller,
                version: version_or_default,
                legacy,
                server,
            };
            match request_id {
                None => actions::list(&request).await,
                Some(rid) => actions::show(&request, rid).await,
            }
        }
        Target::Servers(listing) => {
            let request = servers::Request {
                call,
                caller: &caller,
                version: version_or_default,
            };
            servers::list(&request, listing).await
        }
        Target::Server(id) => {
            let request = servers::Request {
                call,
                caller: &caller,
                version: version_or_default,
            };
            servers::show(&request, id).await
        }
    };
    match result {
        Ok(reply) => answer(reply),
        Err(fault) => answer(call.fail(fault)),
    }
}

/// Test requests' headers, from static pairs.
#[cfg(test)]
pub(crate) fn header_map(
    pairs: &[(&'static str, &'static str)],
) -> actix_web::http::header::HeaderMap {
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_decoded_then_collapsed() {
        assert_eq!(
            normalized_path("//v2.1//servers/X//os-instance-actions"),
            "/v2.1/servers/X/os-instance-actions"
        );
        assert_eq!(normalized_path("/v2.1/servers%2FX"), "/v2.1/servers/X");
        assert_eq!(normalized_path("/a/req-%C3%A9"), "/a/req-é");
    }

    #[test]
    fn routes() {
        let r = route("servers/abc/os-instance-actions").unwrap();
        assert_eq!(
            (r.project, r.target),
            (
                None,
                Target::Actions {
                    server: "abc",
                    request_id: None
                }
            )
        );
        let r = route("0123abcd/servers/abc/os-instance-actions/req-1.json").unwrap();
        assert_eq!(
            (r.project, r.target),
            (
                Some("0123abcd"),
                Target::Actions {
                    server: "abc",
                    request_id: Some("req-1.json")
                }
            )
        );
        assert!(route("proj-a/servers/abc/os-instance-actions").is_none());
        assert!(route("servers/abc/os-instance-actions/").is_none());
        assert!(route("servers/abc/os-instance-actions.json").is_none());
        assert_eq!(route("servers/abc").unwrap().target, Target::Server("abc"));
        let listing = |p| route(p).map(|r| r.target);
        assert_eq!(
            listing("servers"),
            Some(Target::Servers(servers::Listing::Index))
        );
        assert_eq!(
            listing("servers/detail"),
            Some(Target::Servers(servers::Listing::Detail))
        );
        assert!(route("servers/").is_none());
    }
}
