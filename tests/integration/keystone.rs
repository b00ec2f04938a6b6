//! `keystone` and `trusted-headers` identity. A local Keystone double (fast, deterministic:
//! counts calls, fails on demand) pins caching, renewal, time-outs and failing closed; the test
//! at the end runs against a real Keystone when .ci/run (or a developer) has started one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::common::{TestServer, fixture};

const LIST: &str = "/v2.1/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions";
const SHOW: &str = "/v2.1/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions/req-a1000000-0000-4000-8000-000000000004";

/// (user, project or None, roles)
type Identity = (String, Option<String>, Vec<String>);

#[derive(Default)]
struct Double {
    logins: AtomicU64,
    validations: AtomicU64,
    /// Seconds the service tokens it hands out live.
    service_ttl: AtomicU64,
    current_service_token: Mutex<String>,
    /// User tokens it knows: token -> (user, project or None, roles).
    tokens: Mutex<HashMap<String, Identity>>,
    fail_with: AtomicU64,
    delay_ms: AtomicU64,
    reject_service_once: AtomicBool,
}

fn expires_in(secs: u64) -> String {
    let t = nova_actions::timeutil::now_micros() + (secs as i64) * 1_000_000;
    format!("{}Z", nova_actions::timeutil::format_micros(t))
}

async fn login(d: web::Data<Double>) -> HttpResponse {
    let n = d.logins.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("service-token-{n}");
    *d.current_service_token.lock().unwrap() = token.clone();
    let ttl = d.service_ttl.load(Ordering::SeqCst);
    HttpResponse::Created()
        .insert_header(("X-Subject-Token", token))
        .json(json!({"token": {"expires_at": expires_in(ttl), "user": {"id": "svc"}}}))
}

async fn validate(req: HttpRequest, d: web::Data<Double>) -> HttpResponse {
    d.validations.fetch_add(1, Ordering::SeqCst);
    let delay = d.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        actix_web::rt::time::sleep(Duration::from_millis(delay)).await;
    }
    let fail = d.fail_with.load(Ordering::SeqCst);
    if fail > 0 {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(fail as u16).unwrap())
            .finish();
    }
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let service_ok = header("x-auth-token") == *d.current_service_token.lock().unwrap();
    if !service_ok || d.reject_service_once.swap(false, Ordering::SeqCst) {
        return HttpResponse::Unauthorized().finish();
    }
    let subject = header("x-subject-token");
    let Some((user, project, roles)) = d.tokens.lock().unwrap().get(&subject).cloned() else {
        return HttpResponse::NotFound().json(
            json!({"error": {"code": 404, "message": format!("Could not find token: {subject}")}}),
        );
    };
    let roles: Vec<Value> = roles.iter().map(|r| json!({"id": r, "name": r})).collect();
    let mut token = json!({"user": {"id": user}, "roles": roles, "expires_at": expires_in(3600)});
    match project {
        Some(p) => token["project"] = json!({"id": p, "name": p}),
        None if user.starts_with("system") => token["system"] = json!({"all": true}),
        None => {}
    }
    HttpResponse::Ok().json(json!({"token": token}))
}

struct KeystoneDouble {
    state: web::Data<Double>,
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
}

impl KeystoneDouble {
    fn start() -> KeystoneDouble {
        let state = web::Data::new(Double::default());
        state.service_ttl.store(3600, Ordering::SeqCst);
        let shared = state.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(shared.clone())
                        .route("/v3/auth/tokens", web::post().to(login))
                        .route("/v3/auth/tokens", web::get().to(validate))
                })
                .workers(1)
                .bind("127.0.0.1:0")
                .unwrap();
                let addr = server.addrs()[0];
                let server = server.run();
                tx.send((addr, server.handle())).unwrap();
                let _ = server.await;
            });
        });
        let (addr, handle) = rx.recv().unwrap();
        KeystoneDouble {
            state,
            addr,
            handle,
        }
    }

    fn token(&self, token: &str, user: &str, project: Option<&str>, roles: &[&str]) {
        self.state.tokens.lock().unwrap().insert(
            token.into(),
            (
                user.into(),
                project.map(str::to_string),
                roles.iter().map(std::string::ToString::to_string).collect(),
            ),
        );
    }

    fn validations(&self) -> u64 {
        self.state.validations.load(Ordering::SeqCst)
    }

    fn logins(&self) -> u64 {
        self.state.logins.load(Ordering::SeqCst)
    }

    fn stop(&self) {
        let stopping = self.handle.stop(false);
        actix_web::rt::System::new().block_on(stopping);
    }
}

fn service_against(
    keystone: &KeystoneDouble,
    adjust: impl FnOnce(&mut nova_actions::config::Config),
) -> TestServer {
    let url = format!("http://{}", keystone.addr);
    let s = TestServer::with_config(|c| {
        c.auth.mode = nova_actions::config::AuthMode::Keystone;
        c.keystone.auth_url = url;
        c.keystone.password = "secret".into();
        c.keystone.timeout = "2s".parse().unwrap();
        adjust(c);
    });
    keystone.token("load-token", "loader", Some("service"), &["service"]);
    let r = s.send(
        "POST",
        "/ingest/v1/import",
        &[("X-Auth-Token", "load-token")],
        &fixture(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    s
}

#[test]
fn valid_tokens_give_roles_and_project_and_are_cached() {
    let k = KeystoneDouble::start();
    let s = service_against(&k, |_| ());
    k.token("tok-reader", "u-reader", Some("proj-a"), &["reader"]);
    k.token(
        "tok-admin",
        "u-admin",
        Some("elsewhere"),
        &["admin", "member", "reader"],
    );
    let before = k.validations();
    let r = s.get(SHOW, "tok-reader", "2.84");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["instanceAction"]["events"][0]
            .get("traceback")
            .is_none()
    );
    assert_eq!(k.validations(), before + 1);
    assert_eq!(s.get(LIST, "tok-reader", "2.84").status, 200);
    assert_eq!(
        k.validations(),
        before + 1,
        "the second request is answered from the cache"
    );
    let r = s.get(SHOW, "tok-admin", "2.84");
    assert!(
        r.json()["instanceAction"]["events"][0]
            .get("traceback")
            .is_some()
    );
    let metrics = s.send("GET", "/metrics", &[], b"").text();
    assert!(
        metrics.contains(r#"nova_actions_cache_hits_total{cache="keystone_tokens"} 1"#),
        "{metrics}"
    );
}

#[test]
fn invalid_tokens_are_401_with_the_keystone_uri() {
    let k = KeystoneDouble::start();
    let s = service_against(&k, |_| ());
    let r = s.get(LIST, "not-a-token", "2.84");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some(format!("Keystone uri=\"http://{}\"", k.addr).as_str())
    );
    assert_eq!(
        r.text(),
        r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#
    );
    assert_eq!(s.get(LIST, "", "2.84").status, 401);
    assert_eq!(s.send("GET", LIST, &[], b"").status, 401);
}

#[test]
fn keystone_failures_fail_closed_with_503() {
    let k = KeystoneDouble::start();
    let s = service_against(&k, |_| ());
    k.token("tok", "u", Some("proj-a"), &["reader"]);
    k.state.fail_with.store(500, Ordering::SeqCst);
    let r = s.get(LIST, "tok", "2.84");
    assert_eq!(r.status, 503);
    assert_eq!(
        r.text(),
        r#"{"serviceUnavailable": {"code": 503, "message": "The server is currently unavailable. Please try again at a later time."}}"#
    );
    k.state.fail_with.store(403, Ordering::SeqCst);
    assert_eq!(
        s.get(LIST, "tok", "2.84").status,
        503,
        "a service user that may not validate is 503"
    );
    k.state.fail_with.store(0, Ordering::SeqCst);
    assert_eq!(s.get(LIST, "tok", "2.84").status, 200);
    k.stop();
    assert_eq!(
        s.get(LIST, "other-token", "2.84").status,
        503,
        "Keystone down"
    );
    assert_eq!(
        s.get(LIST, "tok", "2.84").status,
        200,
        "already validated tokens stay cached"
    );
}

#[test]
fn slow_keystone_times_out_into_503() {
    let k = KeystoneDouble::start();
    let s = service_against(&k, |c| c.keystone.timeout = "1s".parse().unwrap());
    k.token("tok", "u", Some("proj-a"), &["reader"]);
    k.state.delay_ms.store(3000, Ordering::SeqCst);
    let started = std::time::Instant::now();
    assert_eq!(s.get(LIST, "tok", "2.84").status, 503);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "gave up after the timeout: {:?}",
        started.elapsed()
    );
}

#[test]
fn the_service_token_is_renewed_before_expiry_and_after_rejection() {
    let k = KeystoneDouble::start();
    // Lives 61 s: renewal 60 s before expiry means it is stale after 1 s.
    k.state.service_ttl.store(61, Ordering::SeqCst);
    let s = service_against(&k, |_| ());
    assert_eq!(k.logins(), 1);
    k.token("tok-1", "u", Some("proj-a"), &["reader"]);
    k.token("tok-2", "u", Some("proj-a"), &["reader"]);
    k.token("tok-3", "u", Some("proj-a"), &["reader"]);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(s.get(LIST, "tok-1", "2.84").status, 200);
    assert_eq!(k.logins(), 2, "a stale service token is renewed before use");
    k.state.service_ttl.store(3600, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(s.get(LIST, "tok-2", "2.84").status, 200);
    assert_eq!(k.logins(), 3);
    k.state.reject_service_once.store(true, Ordering::SeqCst);
    assert_eq!(
        s.get(LIST, "tok-3", "2.84").status,
        200,
        "a rejected service token is replaced and the call retried"
    );
    assert_eq!(k.logins(), 4);
}

#[test]
fn tokens_without_a_project_fail_the_project_rules() {
    let k = KeystoneDouble::start();
    let s = service_against(&k, |_| ());
    k.token("unscoped", "u", None, &[]);
    k.token("system-reader", "system-reader", None, &["reader"]);
    for token in ["unscoped", "system-reader"] {
        let r = s.get(LIST, token, "2.84");
        assert_eq!(r.status, 403, "{token}: {}", r.text());
        assert_eq!(
            r.json()["forbidden"]["message"],
            "Policy doesn't allow os_compute_api:os-instance-actions:list to be performed."
        );
    }
    k.token("system-admin", "system-admin", None, &["admin", "reader"]);
    assert_eq!(s.get(LIST, "system-admin", "2.84").status, 200);
}

#[test]
fn trusted_headers_mode_believes_the_proxy_and_nothing_else() {
    let s =
        TestServer::with_config(|c| c.auth.mode = nova_actions::config::AuthMode::TrustedHeaders);
    let admin = [
        ("X-Identity-Status", "Confirmed"),
        ("X-User-Id", "a"),
        ("X-Project-Id", "x"),
        ("X-Roles", "admin"),
    ];
    assert_eq!(
        s.send("POST", "/ingest/v1/import", &admin, &fixture())
            .status,
        200
    );
    let reader = [
        ("X-Identity-Status", "Confirmed"),
        ("X-User-Id", "u"),
        ("X-Project-Id", "proj-a"),
        ("X-Roles", "reader"),
        ("OpenStack-API-Version", "compute 2.84"),
    ];
    assert_eq!(s.send("GET", LIST, &reader, b"").status, 200);
    let invalid = [
        ("X-Identity-Status", "Invalid"),
        ("X-User-Id", "u"),
        ("X-Project-Id", "proj-a"),
        ("X-Roles", "reader"),
    ];
    assert_eq!(s.send("GET", LIST, &invalid, b"").status, 401);
    assert_eq!(
        s.send("GET", LIST, &[("X-Auth-Token", "user-a:proj-a")], b"")
            .status,
        401,
        "noauth tokens mean nothing here"
    );
}

/// Against a real Keystone: set up and started by .ci/run through scripts/keystone/.
#[test]
fn real_keystone() {
    let Ok(url) = std::env::var("NOVA_ACTIONS_TEST_KEYSTONE_URL") else {
        eprintln!(
            "real_keystone: NOVA_ACTIONS_TEST_KEYSTONE_URL is not set; skipped (see scripts/keystone/README.md)"
        );
        return;
    };
    crate::real_keystone::run(&url);
}
