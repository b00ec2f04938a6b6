//! The mirror against an upstream double (Keystone and Nova in one small server) that fails on
//! demand: an expired token, rate limits with `Retry-After`, a missing role, an outage. What a
//! real Nova cannot be made to do in a test; `mirror.rs` covers the real one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::json;

use crate::backend::StoreArg;
use crate::cli::{Served, binary, serve_with};
use crate::common::{ADMIN, TempDir, get_at};

const SERVER: &str = "b0000000-0000-4000-8000-000000000001";

#[derive(Default)]
struct Upstream {
    tokens_issued: AtomicU64,
    /// Tokens Nova accepts; the first one Keystone hands out is refused (it "expired").
    accepted: Mutex<Vec<String>>,
    /// Listings of servers answered 429 before one is served.
    rate_limited: AtomicU64,
    /// Every Nova request is answered with this status when not 0.
    fail_with: AtomicU16,
    compute_base: Mutex<String>,
    /// Servers listed beyond the first (ids `b…0001`, `b…0002`, …), each with one action.
    more_servers: AtomicU64,
    /// Actions shown so far.
    shows: AtomicU64,
}

fn server_id(n: u64) -> String {
    format!("b0000000-0000-4000-8000-{n:012}")
}

fn token_of(req: &HttpRequest) -> String {
    req.headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn issue_token(u: web::Data<Upstream>) -> HttpResponse {
    let n = u.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("tok-{n}");
    if n > 1 {
        u.accepted.lock().unwrap().push(token.clone());
    }
    let compute = u.compute_base.lock().unwrap().clone();
    HttpResponse::Created()
        .insert_header(("X-Subject-Token", token))
        .json(json!({"token": {"catalog": [
            {"type": "compute", "endpoints": [
                {"interface": "internal", "region_id": "RegionOne", "url": "http://127.0.0.1:9/v2.1"},
                {"interface": "public", "region_id": "RegionOne", "url": compute}
            ]}
        ]}}))
}

/// Nova's fault body, with its request id header.
fn fault(status: u16, kind: &str, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .insert_header(("x-openstack-request-id", format!("req-double-{status}")))
        .json(json!({kind: {"code": status, "message": message}}))
}

/// Whether a Nova request gets through; otherwise the answer it gets instead.
fn gate(req: &HttpRequest, u: &Upstream) -> Option<HttpResponse> {
    match u.fail_with.load(Ordering::SeqCst) {
        0 => {}
        403 => {
            return Some(fault(
                403,
                "forbidden",
                "Policy doesn't allow os_compute_api:servers:detail:get_all_tenants to be performed.",
            ));
        }
        status => return Some(fault(status, "computeFault", "The double is down.")),
    }
    let token = token_of(req);
    if token != ADMIN && !u.accepted.lock().unwrap().contains(&token) {
        return Some(fault(
            401,
            "unauthorized",
            "The request you have made requires authentication.",
        ));
    }
    None
}

async fn versions(req: HttpRequest, u: web::Data<Upstream>) -> HttpResponse {
    if let Some(refused) = gate(&req, &u) {
        return refused;
    }
    HttpResponse::Ok().json(json!({"version": {"id": "v2.1", "status": "CURRENT",
        "version": "2.96", "min_version": "2.1"}}))
}

async fn servers(req: HttpRequest, u: web::Data<Upstream>) -> HttpResponse {
    if let Some(refused) = gate(&req, &u) {
        return refused;
    }
    let limited = u
        .rate_limited
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if limited.is_ok() {
        let mut limited = fault(429, "overLimit", "This request was rate-limited.");
        limited.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("1"),
        );
        return limited;
    }
    let count = 1 + u.more_servers.load(Ordering::SeqCst);
    let servers: Vec<_> = (1..=count)
        .map(|n| {
            json!({
                "id": server_id(n), "name": format!("double-{n}"), "status": "ACTIVE",
                "tenant_id": "proj-d", "user_id": "user-d", "created": "2026-01-01T00:00:00Z",
                "updated": "2026-01-01T00:01:00Z", "OS-EXT-SRV-ATTR:host": "compute-d",
                "OS-SRV-USG:terminated_at": null
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "servers": servers }))
}

fn action_doc() -> serde_json::Value {
    json!({"action": "reboot", "instance_uuid": SERVER, "request_id": "req-d-1",
        "user_id": "user-d", "project_id": "proj-d", "message": null,
        "start_time": "2026-01-01T00:00:30.000000", "updated_at": "2026-01-01T00:00:40.000000"})
}

async fn actions(req: HttpRequest, u: web::Data<Upstream>) -> HttpResponse {
    if let Some(refused) = gate(&req, &u) {
        return refused;
    }
    HttpResponse::Ok().json(json!({"instanceActions": [action_doc()], "links": []}))
}

async fn action(req: HttpRequest, u: web::Data<Upstream>) -> HttpResponse {
    if let Some(refused) = gate(&req, &u) {
        return refused;
    }
    u.shows.fetch_add(1, Ordering::SeqCst);
    let mut doc = action_doc();
    doc["events"] = json!([{"event": "compute_reboot_instance",
        "start_time": "2026-01-01T00:00:31.000000", "finish_time": "2026-01-01T00:00:40.000000",
        "result": "Success", "traceback": null, "host": "compute-d", "hostId": "h",
        "details": null}]);
    HttpResponse::Ok().json(json!({"instanceAction": doc}))
}

struct Double {
    state: web::Data<Upstream>,
    addr: SocketAddr,
    scheme: &'static str,
}

fn tls_fixture(name: &str) -> std::path::PathBuf {
    crate::common::fixtures_dir().join("tls").join(name)
}

/// The double's https setup: the test certificate for 127.0.0.1, signed by the test CA.
fn server_tls() -> rustls::ServerConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(tls_fixture("server.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_file(tls_fixture("server.key")).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap()
}

impl Double {
    fn start() -> Double {
        Double::start_with(false)
    }

    fn start_with(tls: bool) -> Double {
        let state = web::Data::new(Upstream::default());
        let shared = state.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(shared.clone())
                        .route("/identity/v3/auth/tokens", web::post().to(issue_token))
                        .route("/compute/v2.1", web::get().to(versions))
                        .route("/compute/v2.1/servers/detail", web::get().to(servers))
                        .route(
                            "/compute/v2.1/servers/{id}/os-instance-actions",
                            web::get().to(actions),
                        )
                        .route(
                            "/compute/v2.1/servers/{id}/os-instance-actions/{rid}",
                            web::get().to(action),
                        )
                })
                .workers(1);
                let server = if tls {
                    server.bind_rustls_0_23("127.0.0.1:0", server_tls())
                } else {
                    server.bind("127.0.0.1:0")
                }
                .unwrap();
                tx.send(server.addrs()[0]).unwrap();
                let _ = server.run().await;
            });
        });
        let addr = rx.recv().unwrap();
        let scheme = if tls { "https" } else { "http" };
        *state.compute_base.lock().unwrap() = format!("{scheme}://{addr}/compute/v2.1");
        Double {
            state,
            addr,
            scheme,
        }
    }

    /// A fixed token and the compute endpoint.
    fn token_env(&self) -> [(&'static str, String); 2] {
        [
            (
                "NOVA_ACTIONS__SYNC__ENDPOINT",
                format!("{}://{}/compute/v2.1", self.scheme, self.addr),
            ),
            ("NOVA_ACTIONS__SYNC__TOKEN", ADMIN.to_string()),
        ]
    }

    /// Password credentials, the compute endpoint from the catalog.
    fn password_env(&self, command: &mut std::process::Command) {
        command
            .env(
                "NOVA_ACTIONS__SYNC__AUTH_URL",
                format!("{}://{}/identity", self.scheme, self.addr),
            )
            .env("NOVA_ACTIONS__SYNC__USERNAME", "mirror")
            .env("NOVA_ACTIONS__SYNC__PASSWORD", "secret")
            .env("NOVA_ACTIONS__SYNC__TIMEOUT", "5s");
    }
}

/// The double's one action, as the mirror in `store` shows it.
fn mirrored_show(store: &std::path::Path) -> crate::common::Response {
    let served = serve_with(store, |_| ());
    get_at(
        served.addr,
        &format!("/v2.1/servers/{SERVER}/os-instance-actions/req-d-1"),
        ADMIN,
        "2.84",
    )
}

fn sync_once(double: &Double, store: &std::path::Path) -> std::process::Output {
    let mut command = binary();
    command
        .args(["sync", "--once"])
        .store(store)
        .env("RUST_LOG", "info");
    double.password_env(&mut command);
    command.output().unwrap()
}

#[test]
fn an_expired_token_is_renewed_once_and_a_rate_limit_is_waited_out() {
    let double = Double::start();
    double.state.rate_limited.store(1, Ordering::SeqCst);
    let dir = TempDir::new();
    let store = dir.0.join("mirror");
    let started = Instant::now();
    let out = sync_once(&double, &store);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("authenticating again"), "{log}");
    assert!(log.contains("429") && log.contains("waiting 1 s"), "{log}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After not obeyed"
    );
    assert_eq!(double.state.tokens_issued.load(Ordering::SeqCst), 2);
    let shown = mirrored_show(&store);
    assert_eq!(shown.status, 200, "{}", shown.text());
    assert_eq!(
        shown.json()["instanceAction"]["events"][0]["event"],
        "compute_reboot_instance"
    );
}

#[test]
fn a_missing_role_fails_the_pass_with_the_role_and_the_request_id() {
    let double = Double::start();
    double.state.fail_with.store(403, Ordering::SeqCst);
    let dir = TempDir::new();
    let out = sync_once(&double, &dir.0.join("mirror"));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a refused pass exited 0: {log}");
    assert!(log.contains("needs the admin role"), "{log}");
    assert!(log.contains("req-double-403"), "{log}");
}

fn metrics(served: &Served) -> String {
    get_at(served.addr, "/metrics", ADMIN, "").text()
}

/// The value of one sample, by its full name and labels.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn wait_for(served: &Served, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics(served);
        if ready(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "never {what}:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_follow_the_mirror_and_an_outage_upstream_leaves_reads_up() {
    let double = Double::start();
    double.state.rate_limited.store(1, Ordering::SeqCst);
    let dir = TempDir::new();
    let served = serve_with(&dir.0.join("mirror"), |command| {
        double.password_env(command);
        command
            .env("NOVA_ACTIONS__SYNC__ENABLED", "true")
            .env("NOVA_ACTIONS__SYNC__INTERVAL", "1s");
    });
    let ok = "nova_actions_sync_passes_total{outcome=\"ok\"}";
    let text = wait_for(&served, "a pass", |t| sample(t, ok) >= Some(1.0));
    for (name, expected) in [
        (
            "nova_actions_sync_upstream_requests_total{status=\"401\"}",
            1.0,
        ),
        (
            "nova_actions_sync_upstream_requests_total{status=\"429\"}",
            1.0,
        ),
        (
            "nova_actions_sync_upstream_requests_total{status=\"201\"}",
            2.0,
        ),
        (
            "nova_actions_sync_upstream_info{microversion=\"2.96\"}",
            1.0,
        ),
    ] {
        assert_eq!(sample(&text, name), Some(expected), "{name}:\n{text}");
    }
    let per_pass = sample(&text, "nova_actions_sync_mirrored_total{kind=\"actions\"}").unwrap();
    assert!(per_pass >= 1.0, "{text}");
    let lag = sample(&text, "nova_actions_sync_lag_seconds").expect("a lag once a pass is done");
    assert!((0.0..30.0).contains(&lag), "lag {lag}");

    // Nova goes down: passes fail and are counted, the service goes on answering.
    double.state.fail_with.store(503, Ordering::SeqCst);
    let failed = "nova_actions_sync_errors_total{kind=\"upstream_5xx\"}";
    wait_for(&served, "a failed pass", |t| sample(t, failed) >= Some(1.0));
    let health = get_at(served.addr, "/healthcheck", "", "");
    assert_eq!(health.status, 200, "{}", health.text());
    let shown = get_at(
        served.addr,
        &format!("/v2.1/servers/{SERVER}/os-instance-actions/req-d-1"),
        ADMIN,
        "2.84",
    );
    assert_eq!(shown.status, 200, "{}", shown.text());

    // Back up: the mirror recovers by itself.
    let before = sample(&metrics(&served), ok).unwrap();
    double.state.fail_with.store(0, Ordering::SeqCst);
    wait_for(&served, "a pass after the outage", |t| {
        sample(t, ok) > Some(before)
    });
}

#[test]
fn https_upstreams_are_checked_against_the_configured_ca() {
    let double = Double::start_with(true);
    let dir = TempDir::new();
    let store = dir.0.join("mirror");
    // The system's roots do not know the test CA: refused, and said why.
    let refused = sync_once(&double, &store);
    let log = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "an unknown CA was trusted: {log}"
    );
    assert!(log.to_lowercase().contains("certificate"), "{log}");
    assert_eq!(double.state.tokens_issued.load(Ordering::SeqCst), 0);
    let mut command = binary();
    command
        .args(["sync", "--once"])
        .store(&store)
        .env("NOVA_ACTIONS__SYNC__CA_FILE", tls_fixture("ca.pem"));
    double.password_env(&mut command);
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = mirrored_show(&store);
    assert_eq!(shown.status, 200, "{}", shown.text());
}

/// Against a Nova older than 2.58 (here: asked for 2.20 at most), each pass lists every action
/// and shows only those not yet mirrored complete; both limits are said once.
#[test]
fn an_older_nova_is_read_without_changes_since_and_said_once() {
    let double = Double::start();
    let dir = TempDir::new();
    let store = dir.0.join("mirror");
    let pass = || {
        let out = binary()
            .args(["sync", "--once"])
            .store(&store)
            .env("RUST_LOG", "info")
            .envs(double.token_env())
            .env("NOVA_ACTIONS__SYNC__MAX_MICROVERSION", "2.20")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{log}");
        log
    };
    let requests = |log: &str| -> u64 {
        let done = log.lines().find(|l| l.contains("sync pass done")).unwrap();
        let before = done.split(" upstream requests").next().unwrap();
        before.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let first = pass();
    assert!(first.contains("below 2.58"), "{first}");
    assert!(first.contains("below 2.21"), "{first}");
    // The version document, the changed and the live listings, one action list, one show.
    assert_eq!(requests(&first), 5, "{first}");
    let second = pass();
    // No sweep due, and the one action is mirrored with its events finished: no show.
    assert_eq!(requests(&second), 3, "{second}");
}

/// A pass killed with -9 part-way goes on from its last checkpoint instead of starting over (a
/// big cloud's first pass can take hours), and ends with every server.
#[test]
fn an_interrupted_pass_goes_on_from_its_checkpoint() {
    let double = Double::start();
    let servers = 400;
    double
        .state
        .more_servers
        .store(servers - 1, Ordering::SeqCst);
    let dir = TempDir::new();
    let store = dir.0.join("mirror");
    let sync = || {
        let mut command = binary();
        command
            .args(["sync", "--once"])
            .store(&store)
            .env("RUST_LOG", "info")
            .envs(double.token_env());
        command
    };
    let mut first = sync().stderr(std::process::Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while double.state.shows.load(Ordering::SeqCst) < 250 {
        assert!(Instant::now() < deadline, "the first pass never got far");
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let before = double.state.shows.load(Ordering::SeqCst);
    let out = sync().output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("resuming the interrupted pass"), "{log}");
    let again = double.state.shows.load(Ordering::SeqCst) - before;
    assert!(
        again <= servers - 200,
        "the resumed pass showed {again} actions: it started over"
    );
    let served = serve_with(&store, |_| ());
    let listed = get_at(
        served.addr,
        "/v2.1/servers?all_tenants=1&limit=1000",
        ADMIN,
        "2.84",
    );
    let ids = listed.json()["servers"].as_array().unwrap().len() as u64;
    assert_eq!(ids, servers, "servers mirrored");
    let last = get_at(
        served.addr,
        &format!(
            "/v2.1/servers/{}/os-instance-actions/req-d-1",
            server_id(servers)
        ),
        ADMIN,
        "2.84",
    );
    assert_eq!(last.status, 200, "{}", last.text());
}
