//! Against a real Keystone (scripts/keystone/): .ci/run starts one and sets
//! NOVA_ACTIONS_TEST_KEYSTONE_URL; without it the test says so and does nothing.

use serde_json::{Value, json};

use crate::common::{TestServer, send_raw};

const WRITE_USER: &str = "nova-actions";

struct Keystone {
    addr: std::net::SocketAddr,
    url: String,
}

impl Keystone {
    fn login(&self, user: &str, password: &str, scope: Value) -> (String, Value) {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": scope
        }});
        let r = send_raw(
            self.addr,
            "POST",
            b"/v3/auth/tokens?nocatalog",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 201, "login of {user}: {}", r.text());
        (r.header("X-Subject-Token").unwrap().to_string(), r.json())
    }

    fn project_token(&self, user: &str, project: &str) -> (String, Value) {
        let password = if user == "admin" { "admin" } else { "secret" };
        self.login(
            user,
            password,
            json!({"project": {"name": project, "domain": {"id": "default"}}}),
        )
    }

    fn revoke(&self, admin: &str, token: &str) {
        let r = send_raw(
            self.addr,
            "DELETE",
            b"/v3/auth/tokens",
            &[("X-Auth-Token", admin), ("X-Subject-Token", token)],
            b"",
        );
        assert_eq!(r.status, 204, "revoke: {}", r.text());
    }
}

/// Registers `url` as the catalog's only compute endpoint (replacing one an earlier run left).
fn register_compute(keystone: &Keystone, admin: &str, url: &str) {
    let call = |method: &str, path: &str, body: Value| {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        send_raw(
            keystone.addr,
            method,
            path.as_bytes(),
            &[
                ("X-Auth-Token", admin),
                ("Content-Type", "application/json"),
            ],
            &body,
        )
    };
    let listed = call("GET", "/v3/services?type=compute", Value::Null);
    for service in listed.json()["services"].as_array().unwrap() {
        let path = format!("/v3/services/{}", service["id"].as_str().unwrap());
        assert_eq!(call("DELETE", &path, Value::Null).status, 204);
    }
    let created = call(
        "POST",
        "/v3/services",
        json!({"service": {"type": "compute", "name": "nova", "enabled": true}}),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let service = created.json()["service"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let endpoint = call(
        "POST",
        "/v3/endpoints",
        json!({"endpoint": {"service_id": service, "interface": "public",
            "region_id": "RegionOne", "url": url, "enabled": true}}),
    );
    assert_eq!(endpoint.status, 201, "{}", endpoint.text());
}

/// `nova-actions sync` with Keystone password credentials and no endpoint: it logs in, finds
/// the compute endpoint in the catalog (here another nova-actions, validating the mirror's
/// token against the same Keystone) and copies what an admin reads there.
fn mirror_with_a_password(keystone: &Keystone, admin: &str, upstream: &TestServer, list: &str) {
    use crate::backend::StoreArg;
    register_compute(keystone, admin, &format!("http://{}/v2.1", upstream.addr));
    let dir = crate::common::TempDir::new();
    let store = dir.0.join("mirror");
    let out = crate::cli::binary()
        .args(["sync", "--once"])
        .store(&store)
        .env("NOVA_ACTIONS__SYNC__AUTH_URL", &keystone.url)
        .env("NOVA_ACTIONS__SYNC__USERNAME", "admin")
        .env("NOVA_ACTIONS__SYNC__PASSWORD", "admin")
        .env("NOVA_ACTIONS__SYNC__PROJECT_NAME", "admin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sync with a password: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mirror = crate::cli::serve(&store);
    for path in [list.to_string(), format!("{list}/req-1")] {
        let theirs = upstream.get(&path, admin, "2.84");
        let ours = crate::common::get_at(mirror.addr, &path, crate::common::ADMIN, "2.84");
        assert_eq!(theirs.status, 200, "{}", theirs.text());
        assert_eq!(ours.text(), theirs.text(), "{path}");
    }
    let forbidden = crate::cli::binary()
        .args(["sync", "--once"])
        .store(dir.0.join("refused"))
        .env("NOVA_ACTIONS__SYNC__AUTH_URL", &keystone.url)
        .env("NOVA_ACTIONS__SYNC__USERNAME", "reader-a")
        .env("NOVA_ACTIONS__SYNC__PASSWORD", "secret")
        .env("NOVA_ACTIONS__SYNC__PROJECT_NAME", "proj-a")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&forbidden.stderr);
    assert!(!forbidden.status.success(), "a reader mirrored: {log}");
    assert!(log.contains("403") && log.contains("admin role"), "{log}");
}

fn cache_hits(s: &TestServer) -> u64 {
    let text = s.send("GET", "/metrics", &[], b"").text();
    let line = text
        .lines()
        .find(|l| l.starts_with("nova_actions_cache_hits_total{cache=\"keystone_tokens\"}"))
        .unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

pub fn run(url: &str) {
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("NOVA_ACTIONS_TEST_KEYSTONE_URL is http://HOST:PORT");
    let keystone = Keystone {
        addr,
        url: url.to_string(),
    };
    let s = TestServer::with_config(|c| {
        c.auth.mode = nova_actions::config::AuthMode::Keystone;
        c.keystone.auth_url = keystone.url.clone();
        c.keystone.username = WRITE_USER.into();
        c.keystone.password = "secret".into();
        c.keystone.project_name = "service".into();
        c.keystone.timeout = "10s".parse().unwrap();
    });

    // Record a server owned by proj-a's real id, as the service user (role `service`).
    let (reader, body) = keystone.project_token("reader-a", "proj-a");
    let proj_a = body["token"]["project"]["id"].as_str().unwrap().to_string();
    let (service, _) = keystone.project_token(WRITE_USER, "service");
    let line = format!(
        r#"{{"uuid":"e1000000-0000-4000-8000-000000000001","project_id":"{proj_a}","actions":[{{"request_id":"req-1","action":"resize","user_id":"u","project_id":"{proj_a}","start_time":"2024-01-01T00:00:00","message":"Error","events":[{{"event":"compute_resize","start_time":"2024-01-01T00:00:01","finish_time":"2024-01-01T00:00:02","result":"Error","traceback":"tb","host":"cmp","details":"why"}}]}}]}}"#
    );
    let r = s.send(
        "POST",
        "/ingest/v1/import",
        &[("X-Auth-Token", &service)],
        line.as_bytes(),
    );
    assert_eq!(
        r.status,
        200,
        "import with a real service token: {}",
        r.text()
    );
    let list = "/v2.1/servers/e1000000-0000-4000-8000-000000000001/os-instance-actions";
    let show = format!("{list}/req-1");

    // Each role, with the roles Keystone implies.
    let r = s.get(&show, &reader, "2.84");
    assert_eq!(r.status, 200, "reader-a: {}", r.text());
    assert!(
        r.json()["instanceAction"]["events"][0]
            .get("traceback")
            .is_none(),
        "readers see no traceback"
    );
    let (member, _) = keystone.project_token("member-a", "proj-a");
    assert_eq!(
        s.get(list, &member, "2.84").status,
        200,
        "member implies reader"
    );
    let (admin_b, _) = keystone.project_token("admin-x", "proj-b");
    let r = s.get(&show, &admin_b, "2.84");
    assert_eq!(r.status, 200, "an admin of another project: {}", r.text());
    assert_eq!(r.json()["instanceAction"]["events"][0]["traceback"], "tb");
    let (reader_b_like, _) = keystone.login("norole-a", "secret", json!("unscoped"));
    assert_eq!(
        s.get(list, &reader_b_like, "2.84").status,
        403,
        "an unscoped token fails the project rules"
    );
    let (system_admin, _) = keystone.login("admin-x", "secret", json!({"system": {"all": true}}));
    assert_eq!(
        s.get(list, &system_admin, "2.84").status,
        200,
        "system admin is context_is_admin"
    );
    let r = s.send(
        "POST",
        "/ingest/v1/import",
        &[("X-Auth-Token", &reader)],
        line.as_bytes(),
    );
    assert_eq!(r.status, 403, "a reader may not write");

    // Bad and revoked tokens.
    let r = s.get(list, "gAAAAABnot-a-real-fernet-token", "2.84");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some(format!("Keystone uri=\"{url}\"").as_str())
    );
    let (admin, _) = keystone.project_token("admin", "admin");
    let (doomed, _) = keystone.project_token("reader-a", "proj-a");
    keystone.revoke(&admin, &doomed);
    assert_eq!(s.get(list, &doomed, "2.84").status, 401, "a revoked token");

    mirror_with_a_password(&keystone, &admin, &s, list);

    // The cache: the same token again is not sent to Keystone.
    let before = cache_hits(&s);
    assert_eq!(s.get(list, &reader, "2.84").status, 200);
    assert_eq!(cache_hits(&s), before + 1);

    // Keystone stopped: unknown tokens fail closed, cached ones keep working.
    if let Ok(stop) = std::env::var("NOVA_ACTIONS_TEST_KEYSTONE_STOP") {
        let (fresh, _) = keystone.project_token("reader-a", "proj-a");
        let status = std::process::Command::new("bash")
            .arg(&stop)
            .status()
            .unwrap();
        assert!(status.success(), "{stop} failed");
        let r = s.get(list, &fresh, "2.84");
        assert_eq!(r.status, 503, "Keystone stopped: {}", r.text());
        assert_eq!(r.json()["serviceUnavailable"]["code"], 503);
        assert_eq!(
            s.get(list, &reader, "2.84").status,
            200,
            "cached validation survives Keystone going away"
        );
    }
}
