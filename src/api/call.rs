//! What every handler is given: the shared state, and the request as the handlers see it with
//! the answers they share (faults, route misses, version negotiation, authentication).

use std::cell::Cell;
use std::sync::Arc;

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse};

use super::fault::Fault;
use super::reply::{self, Reply, route_miss, unauthorized};
use super::version::{self, Negotiation, Version};
use super::{accept, caller, forwarded};
use crate::auth;
use crate::config::Config;
use crate::input::Limits;
use crate::store::Store;

/// Everything a request handler needs; shared by all workers.
pub struct AppState {
    pub store: Arc<Store>,
    pub config: Config,
    pub limits: Limits,
    pub metrics: crate::metrics::Metrics,
    pub policy: crate::policy::Watched,
    pub auth: auth::Authenticator,
    /// Requests being answered now; shutdown waits for it to reach zero.
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// The mirror running inside this process (`[sync] enabled`), for `/metrics`.
    pub sync: Option<Arc<crate::sync::status::SyncStatus>>,
    pub testing: crate::testing::Testing,
}

/// A request as the handlers see it: decoded path, effective method, fresh request id.
pub struct Call<'a> {
    pub req: &'a HttpRequest,
    pub state: &'a AppState,
    pub request_id: String,
    pub method: Method,
    /// The path after percent-decoding and collapsing runs of `/`.
    pub path: String,
    /// What the request turned out to be, for the access log and metrics.
    pub route: Cell<&'static str>,
    pub version: Cell<Option<Version>>,
    /// The fault rule that answered (or delayed) this request, if one did.
    pub injected: Cell<Option<(u64, &'static str)>>,
}

impl Call<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.req.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// Scheme, host and any proxy prefix of the request: WebOb's `host_url` plus the script
    /// name a proxy may add (see `forwarded`).
    pub fn host_url(&self) -> String {
        let config = &self.state.config;
        forwarded::base_url(
            self.req.headers(),
            config.api.enable_proxy_headers_parsing,
            &config.server.listen.to_string(),
        )
    }

    /// The JSON type this caller prefers for bodies (Nova's `best_match_content_type`).
    pub fn content_type(&self) -> &'static str {
        if self
            .path
            .rsplit_once('.')
            .is_some_and(|(_, ext)| ext == "json")
        {
            return reply::JSON;
        }
        let offers = [reply::JSON, reply::COMPUTE_JSON];
        match self.header("accept") {
            Some(a) => accept::best(a, &offers).map_or(reply::JSON, |i| offers[i]),
            None => reply::JSON,
        }
    }

    /// Renders `fault` for this request (request-id headers; version headers are the
    /// caller's to add). A 500's cause is logged here, never shown.
    pub fn fail(&self, fault: Fault) -> Reply {
        if let Fault::Internal(why) = &fault {
            log::error!("{} {} failed: {why}", self.request_id, self.req.path());
        }
        let reply = match &fault {
            Fault::Unauthorized => {
                unauthorized(&fault.message(), &self.state.config.www_authenticate_uri())
            }
            _ => reply::fault(fault.status(), &fault.message()),
        };
        let reply = if fault.hangs_up() {
            reply.closing()
        } else {
            reply
        };
        reply.request_id(&self.request_id)
    }

    pub fn route_miss(&self) -> HttpResponse {
        route_miss(self.req.method() == Method::HEAD, self.header("accept"))
            .request_id(&self.request_id)
            .finish()
    }

    /// The requested microversion, or the fault to answer with: 400 without version headers
    /// for a malformed one, 406 echoing an unsupported one.
    pub fn negotiate_version(&self) -> Result<Version, HttpResponse> {
        match version::negotiate(self.req.headers()) {
            Negotiation::Ok(v) => Ok(v),
            Negotiation::Malformed(text) => Err(self.fail(Fault::MalformedVersion(text)).finish()),
            Negotiation::Unsupported(text) => Err(self
                .fail(Fault::UnsupportedVersion(text.clone()))
                .versioned(reply::VersionHeaders(text))
                .finish()),
        }
    }

    /// The caller, or the answer to send instead (401, or 503 when identity is unavailable).
    pub async fn authenticate(&self) -> Result<caller::Caller, HttpResponse> {
        match self.state.auth.authenticate(self.req.headers()).await {
            Ok(caller) => Ok(caller::Caller::new(caller, self.state.policy.current())),
            Err(e) => {
                self.route.set(match &e {
                    auth::AuthError::Unauthorized => "unauthorized",
                    auth::AuthError::Unavailable(why) => {
                        log::error!("{} identity unavailable: {why}", self.request_id);
                        "unavailable"
                    }
                });
                Err(self.fail(Fault::from(e)).finish())
            }
        }
    }
}
