//! The testing API: fault injection (Nova-shaped failures, delays, dropped connections) and the
//! request journal, off unless turned on, admins only, and a real client's retries against it.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backend::say;
use crate::common::{ADMIN, Response, TestServer, fixture, send_raw};

const LIST: &str = "/v2.1/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions";
const FAULTS: &str = "/ingest/v1/testing/faults";
const REQUESTS: &str = "/ingest/v1/testing/requests";

fn testing_server(journal_size: usize) -> TestServer {
    let s = TestServer::with_config(|c| {
        c.testing.fault_injection = true;
        c.testing.journal = true;
        c.testing.journal_size = journal_size;
    });
    assert_eq!(s.import(&fixture()).status, 200);
    s
}

/// Any method to a full path, with a JSON body.
fn send(s: &TestServer, method: &str, path: &str, token: &str, body: &str) -> Response {
    send_raw(
        s.addr,
        method,
        path.as_bytes(),
        &[
            ("X-Auth-Token", token),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

fn add_rule(s: &TestServer, rule: Value) -> Value {
    let r = send(s, "POST", FAULTS, ADMIN, &rule.to_string());
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["fault"].clone()
}

#[test]
fn off_by_default_the_testing_api_does_not_exist() {
    let s = TestServer::start();
    let unknown = send(&s, "POST", "/ingest/v1/nothing-here", ADMIN, "{}");
    for (method, path) in [("POST", FAULTS), ("GET", FAULTS), ("GET", REQUESTS)] {
        let r = send(&s, method, path, ADMIN, r#"{"answer": {"status": 503}}"#);
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
        assert_eq!(r.text(), unknown.text(), "as if the route did not exist");
    }
}

#[test]
fn injected_faults_look_like_novas_and_go_after_their_count() {
    let s = testing_server(100);
    let rule = add_rule(
        &s,
        json!({"method": "GET", "path": "/os-instance-actions$", "answer": {"status": 503, "retry_after": 3}, "times": 2}),
    );
    assert_eq!(rule["remaining"], 2);
    for _ in 0..2 {
        let r = s.get(LIST, ADMIN, "2.84");
        assert_eq!(r.status, 503);
        assert_eq!(r.header("retry-after"), Some("3"));
        assert_eq!(
            r.json(),
            json!({"serviceUnavailable": {"code": 503, "message": "Service Unavailable"}})
        );
        assert!(r.header("x-openstack-request-id").is_some());
    }
    assert_eq!(s.get(LIST, ADMIN, "2.84").status, 200, "the rule is spent");
    assert_eq!(s.get(FAULTS, ADMIN, "").json()["faults"], json!([]));

    // 401 the way keystonemiddleware answers, 429 with a default Retry-After, 500 as Nova's.
    add_rule(&s, json!({"answer": {"status": 401}, "times": 1}));
    let r = s.get(LIST, ADMIN, "2.84");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    add_rule(&s, json!({"answer": {"status": 429}, "times": 1}));
    let r = s.get(LIST, ADMIN, "2.84");
    assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));
    assert_eq!(r.json()["overLimit"]["code"], 429);
    add_rule(
        &s,
        json!({"token": "user-a:proj-a", "answer": {"status": 500}, "times": 1}),
    );
    assert_eq!(s.get(LIST, ADMIN, "2.84").status, 200, "another token");
    let r = s.get(LIST, "user-a:proj-a", "2.84");
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["computeFault"]["code"], 500);

    let metrics = s.get("/metrics", ADMIN, "").text();
    assert!(
        metrics.contains("nova_actions_injected_faults_total{rule=\"1\",answer=\"503\"} 2\n"),
        "{metrics}"
    );
}

#[test]
fn delays_and_dropped_connections() {
    let s = testing_server(100);
    add_rule(
        &s,
        json!({"path": "os-instance-actions", "answer": {"delay_ms": 300}, "times": 1}),
    );
    let started = Instant::now();
    let r = s.get(LIST, ADMIN, "2.84");
    assert_eq!(r.status, 200, "a delay still answers");
    assert!(started.elapsed() >= Duration::from_millis(300));
    add_rule(&s, json!({"answer": {"drop": true}, "times": 1}));
    let mut stream = std::net::TcpStream::connect(s.addr).unwrap();
    use std::io::{Read, Write};
    stream
        .write_all(
            format!("GET {LIST} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ADMIN}\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    let journal = s.get(REQUESTS, ADMIN, "").json();
    let last = journal["requests"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["status"].clone(), last["injected"].clone()),
        (json!(0), json!(2))
    );
}

#[test]
fn rules_are_listed_removed_and_reset_and_bad_ones_name_their_field() {
    let s = testing_server(100);
    let a = add_rule(
        &s,
        json!({"answer": {"status": 500}, "probability": 0.5, "seed": 1}),
    );
    add_rule(&s, json!({"answer": {"delay_ms": 1}, "for_seconds": 60}));
    let listed = s.get(FAULTS, ADMIN, "").json();
    assert_eq!(listed["faults"].as_array().unwrap().len(), 2);
    let one = format!("{FAULTS}/{}", a["id"]);
    assert_eq!(send(&s, "DELETE", &one, ADMIN, "").status, 204);
    assert_eq!(send(&s, "DELETE", &one, ADMIN, "").status, 404);
    assert_eq!(send(&s, "DELETE", FAULTS, ADMIN, "").status, 204);
    assert_eq!(s.get(FAULTS, ADMIN, "").json()["faults"], json!([]));
    for (rule, field) in [
        (json!({"answer": {"status": 404}}), "answer.status"),
        (json!({"answer": {}}), "'answer'"),
        (json!({"path": "(", "answer": {"drop": true}}), "'path'"),
        (
            json!({"answer": {"drop": true}, "probability": 2}),
            "'probability'",
        ),
        (json!({"answer": {"drop": true}, "colour": "red"}), "colour"),
    ] {
        let r = send(&s, "POST", FAULTS, ADMIN, &rule.to_string());
        assert_eq!(r.status, 400, "{rule}");
        let message = r.json()["badRequest"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(field), "{rule}: {message}");
    }
    assert_eq!(s.get(FAULTS, ADMIN, "").json()["faults"], json!([]));
    let r = send(
        &s,
        "POST",
        FAULTS,
        "user-a:proj-a",
        r#"{"answer": {"drop": true}}"#,
    );
    assert_eq!(r.status, 403, "admins only");
}

#[test]
fn the_journal_keeps_the_last_requests_with_tokens_masked() {
    let s = testing_server(3);
    for marker in ["m1", "m2", "m3", "m4"] {
        s.get(&format!("{LIST}?limit=1&marker={marker}"), ADMIN, "2.58");
    }
    let journal = s.get(REQUESTS, ADMIN, "").json();
    let requests = journal["requests"].as_array().unwrap();
    let queries: Vec<&str> = requests
        .iter()
        .map(|r| r["query"].as_str().unwrap())
        .collect();
    assert_eq!(
        queries,
        [
            "limit=1&marker=m2",
            "limit=1&marker=m3",
            "limit=1&marker=m4"
        ]
    );
    let last = &requests[2];
    assert_eq!(last["microversion"], "compute 2.58");
    assert_eq!(last["path"], LIST);
    assert_eq!(last["status"], 400, "an unknown marker: {last}");
    let token = last["token"].as_str().unwrap();
    assert!(
        !token.contains(ADMIN) && token.starts_with("admi"),
        "{token}"
    );
    assert_eq!(send(&s, "DELETE", REQUESTS, ADMIN, "").status, 204);
    assert_eq!(s.get(REQUESTS, ADMIN, "").json()["requests"], json!([]));
}

#[test]
fn fault_injection_is_refused_in_keystone_mode_unless_forced() {
    let mut config = nova_actions::config::Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    let dir = crate::common::TempDir::new();
    config.storage.data_dir = dir.0.join("store");
    config.auth.mode = nova_actions::config::AuthMode::Keystone;
    config.testing.fault_injection = true;
    let refused = actix_web::rt::System::new().block_on(async {
        nova_actions::build(config.clone())
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("allow_with_keystone")),
        "{refused:?}"
    );
    config.testing.allow_with_keystone = true;
    config.storage.data_dir = dir.0.join("store2");
    let allowed = actix_web::rt::System::new().block_on(async {
        nova_actions::build(config)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    assert!(allowed.is_ok(), "{allowed:?}");
}

/// keystoneauth (under openstacksdk) retries a 503 and waits what `Retry-After` says, when the
/// cloud's configuration asks for status-code retries.
#[test]
fn a_real_clients_retries_ride_out_injected_503s() {
    let venv = match std::env::var_os("NOVA_ACTIONS_CLIENTS_VENV") {
        Some(v) if Path::new(&v).join("bin/python").is_file() => v,
        _ => {
            say(
                "SKIPPED a_real_clients_retries_ride_out_injected_503s: no NOVA_ACTIONS_CLIENTS_VENV (scripts/clients/setup.sh)",
            );
            return;
        }
    };
    let s = testing_server(100);
    add_rule(
        &s,
        json!({"path": "os-instance-actions$", "answer": {"status": 503, "retry_after": 1}, "times": 2}),
    );
    let script = r#"
import sys, time, openstack
conn = openstack.connect(auth_type="admin_token",
                         auth={"endpoint": sys.argv[1], "token": "admin:admin"},
                         compute_api_version="2.84", compute_status_code_retries=3)
started = time.monotonic()
actions = list(conn.compute.server_actions(sys.argv[2]))
print(len(actions), round(time.monotonic() - started, 2))
"#;
    let out = std::process::Command::new(Path::new(&venv).join("bin/python"))
        .args(["-c", script])
        .arg(format!("http://{}/v2.1", s.addr))
        .arg("a0000000-0000-4000-8000-000000000001")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<&str> = stdout.split_whitespace().collect();
    let expected = s.get(LIST, ADMIN, "2.84").json()["instanceActions"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        fields[0],
        expected.to_string(),
        "every action, after the retries"
    );
    let waited: f64 = fields[1].parse().unwrap();
    assert!(
        waited >= 2.0,
        "Retry-After: 1, twice, was not waited: {waited} s"
    );
    let journal = s.get(REQUESTS, ADMIN, "").json();
    let statuses: Vec<u64> = journal["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == LIST && r["token"].as_str().unwrap().starts_with("admi"))
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(&statuses[..3], [503, 503, 200], "{journal}");
}
