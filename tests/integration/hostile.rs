//! Hostile callers and hostile input: other projects probing for data, readers fishing for
//! tracebacks and hosts, secrets that must stay out of the access log, odd ids, and storage
//! that cannot be opened or fills up while serving.

use crate::backend::StoreArg;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::binary;
use crate::common::{
    ADMIN, Response, TempDir, TestServer, assert_request_ids, fixture, fixture_server, get_at,
    send_raw, write_at,
};

/// One server of the recorded fixture and everything about it that must not leak.
struct Fixed {
    uuid: String,
    project: String,
    deleted: bool,
    request_ids: Vec<String>,
    /// Hosts, tracebacks and details of its events (and the server's own host).
    secrets: Vec<String>,
}

fn fixed_servers() -> Vec<Fixed> {
    String::from_utf8(fixture())
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let text = |v: &Value| v.as_str().map(str::to_string);
            let mut secrets: Vec<String> = text(&v["host"]).into_iter().collect();
            let mut request_ids = Vec::new();
            for a in v["actions"].as_array().unwrap() {
                request_ids.push(text(&a["request_id"]).unwrap());
                for e in a["events"].as_array().unwrap() {
                    for key in ["host", "traceback", "details"] {
                        secrets.extend(text(&e[key]));
                    }
                }
            }
            secrets.sort();
            secrets.dedup();
            Fixed {
                uuid: text(&v["uuid"]).unwrap(),
                project: text(&v["project_id"]).unwrap(),
                deleted: v["deleted"].as_bool().unwrap(),
                request_ids,
                secrets,
            }
        })
        .collect()
}

/// Asserts a Nova fault: status, JSON body `{"<name>": {"code": .., "message": ..}}`, request
/// ids; returns the message.
fn fault(r: &Response, code: u16) -> String {
    assert_eq!(r.status, code, "{}: {}", r.status, r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    assert_request_ids(r);
    let body = r.json();
    let object = body.as_object().expect("a JSON object");
    assert_eq!(object.len(), 1, "{body}");
    let (_, inner) = object.iter().next().unwrap();
    assert_eq!(inner["code"], code, "{body}");
    inner["message"].as_str().expect("a message").to_string()
}

/// A route miss asked for as JSON: 404, request ids, the WebOb JSON body.
fn route_miss(r: &Response) {
    assert_eq!(r.status, 404, "{}", r.text());
    assert_request_ids(r);
    assert_eq!(r.json()["code"], "404 Not Found", "{}", r.text());
}

fn get_json(s: &TestServer, path: &str, token: &str, version: Option<&str>) -> Response {
    let version = version.map(|v| format!("compute {v}"));
    let mut headers = vec![("X-Auth-Token", token), ("Accept", "application/json")];
    if let Some(v) = &version {
        headers.push(("OpenStack-API-Version", v));
    }
    s.send("GET", path, &headers, b"")
}

fn assert_no_secrets(r: &Response, server: &Fixed, what: &str) {
    let body = r.text();
    for secret in server.request_ids.iter().chain(&server.secrets) {
        assert!(
            !body.contains(secret.as_str()),
            "{what}: the body names {secret:?}: {body}"
        );
    }
    assert!(!body.contains("Traceback"), "{what}: {body}");
}

#[test]
fn no_caller_of_another_project_sees_anything_of_a_server() {
    let s = fixture_server();
    let servers = fixed_servers();
    assert_eq!(servers.len(), 4);
    let callers = [
        "user-a:proj-a",
        "user-b:proj-b",
        "x:proj-x:reader",
        "x:proj-x:member,reader",
        "x:proj-x:",
        "y:0123abcd:reader",
        "y:0123abcd:member,reader",
        // Roles that sound powerful but are not `admin`.
        "z:proj-z:reader,member,service,Admins,project_admin",
    ];
    let mut checked = 0;
    for server in &servers {
        let sid = &server.uuid;
        let mut tails = vec![format!("servers/{sid}/os-instance-actions")];
        tails.extend(
            server
                .request_ids
                .iter()
                .map(|rid| format!("servers/{sid}/os-instance-actions/{rid}")),
        );
        // The request ids of other servers, on this server.
        tails.push(format!(
            "servers/{sid}/os-instance-actions/req-b1000000-0000-4000-8000-000000000001"
        ));
        for token in callers {
            let project = token.split(':').nth(1).unwrap();
            if project == server.project {
                continue;
            }
            for tail in &tails {
                let not_found = |r: &Response, what: &str| {
                    let message = fault(r, 404);
                    assert_eq!(
                        message,
                        format!("Instance {sid} could not be found."),
                        "{what}"
                    );
                    assert_no_secrets(r, server, what);
                };
                for version in ["2.1", "2.21", "2.58", "2.84", "latest"] {
                    let path = format!("/v2.1/{tail}");
                    let r = get_json(&s, &path, token, Some(version));
                    not_found(&r, &format!("{token} {version} {path}"));
                    // A query does not change that (2.58+ validates it first: 400 or 404).
                    let path = format!("/v2.1/{tail}?limit=1000&changes-since=2000-01-01");
                    let r = get_json(&s, &path, token, Some(version));
                    assert!([400, 404].contains(&r.status), "{}", r.text());
                    fault(&r, r.status);
                    assert_no_secrets(&r, server, &path);
                    checked += 2;
                }
                let path = format!("/v2/{tail}");
                not_found(&get_json(&s, &path, token, None), &path);
                // The project-in-URL forms: the caller's own project (when it can be one) finds
                // nothing either; the server's or a third project is a mismatch (400) or, when
                // it is not hex, a route miss.
                for prefix in ["/v2.1", "/v2"] {
                    for url_project in [project, server.project.as_str(), "deadbeef"] {
                        let path = format!("{prefix}/{url_project}/{tail}");
                        let r = get_json(&s, &path, token, Some("2.84"));
                        let hex = url_project
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                        if !hex {
                            route_miss(&r);
                        } else if url_project == project {
                            not_found(&r, &path);
                        } else {
                            let message = fault(&r, 400);
                            assert!(message.starts_with("Malformed request URL"), "{message}");
                        }
                        assert_no_secrets(&r, server, &path);
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 1000, "{checked}");
    // The same requests as an admin do find the servers: the matrix tested something.
    for server in &servers {
        let r = get_json(
            &s,
            &format!("/v2.1/servers/{}/os-instance-actions", server.uuid),
            ADMIN,
            Some("latest"),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

/// The default policy shows events' traceback, host and details to admins only; a project
/// reader of the server's own project gets the reduced event fields at every microversion.
#[test]
fn a_project_reader_never_sees_tracebacks_hosts_or_details() {
    let s = fixture_server();
    let servers = fixed_servers();
    let mut shown_events = 0;
    for token in ["user-a:proj-a", "r:proj-a:reader", "m:proj-a:member,reader"] {
        for minor in 1..=104u32 {
            let version = format!("2.{minor}");
            for server in servers.iter().filter(|f| f.project == "proj-a") {
                let list = format!("/v2.1/servers/{}/os-instance-actions", server.uuid);
                let mut paths = vec![list];
                paths.extend(
                    server.request_ids.iter().map(|rid| {
                        format!("/v2.1/servers/{}/os-instance-actions/{rid}", server.uuid)
                    }),
                );
                for (i, path) in paths.iter().enumerate() {
                    let r = get_json(&s, path, token, Some(&version));
                    let what = format!("{token} {version} {path}");
                    if server.deleted && minor < 21 {
                        fault(&r, 404);
                        continue;
                    }
                    assert_eq!(r.status, 200, "{what}: {}", r.text());
                    let body = r.text();
                    assert!(!body.contains("Traceback"), "{what}: {body}");
                    assert!(!body.contains("\"details\""), "{what}: {body}");
                    assert!(!body.contains("\"host\""), "{what}: {body}");
                    assert!(!body.contains("\"traceback\""), "{what}: {body}");
                    for secret in &server.secrets {
                        assert!(!body.contains(secret.as_str()), "{what}: {secret}: {body}");
                    }
                    if i == 0 {
                        assert!(!body.contains("hostId"), "{what}: {body}");
                        continue;
                    }
                    let action = &r.json()["instanceAction"];
                    if minor < 51 {
                        assert!(action.get("events").is_none(), "{what}: {body}");
                        continue;
                    }
                    let mut expected = vec!["event", "start_time", "finish_time", "result"];
                    if minor >= 62 {
                        expected.push("hostId");
                    }
                    for event in action["events"].as_array().unwrap() {
                        let mut keys: Vec<&str> = event
                            .as_object()
                            .unwrap()
                            .keys()
                            .map(std::string::String::as_str)
                            .collect();
                        keys.sort_unstable();
                        let mut expected = expected.clone();
                        expected.sort_unstable();
                        assert_eq!(keys, expected, "{what}");
                        if let Some(id) = event.get("hostId") {
                            let id = id.as_str().unwrap();
                            assert!(
                                id.is_empty()
                                    || (id.len() == 56
                                        && id.bytes().all(|b| b.is_ascii_hexdigit())),
                                "{what}: {id}"
                            );
                        }
                        shown_events += 1;
                    }
                }
            }
        }
    }
    assert!(shown_events > 100, "{shown_events}");
    // An admin does see them: the fixture holds what the reader must not see.
    let r = get_json(
        &s,
        "/v2.1/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions/req-a1000000-0000-4000-8000-000000000004",
        ADMIN,
        Some("2.84"),
    );
    assert!(r.text().contains("Traceback") && r.text().contains("\"details\": \"Resize error"));
}

/// The real binary, logging at info to a file.
type Logged = crate::cli::Served;

fn serve_logged(store: &Path, log: &Path) -> Logged {
    crate::cli::serve_with(store, |command| {
        command
            .env("RUST_LOG", "info")
            .env("RUST_LOG_STYLE", "never")
            .stderr(std::fs::File::create(log).unwrap());
    })
}

/// (method, path, headers, body, expected status)
type Probe<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, String, u16);

#[test]
fn tokens_queries_and_tracebacks_stay_out_of_the_access_log() {
    let dir = TempDir::new();
    let log = dir.0.join("stderr.log");
    let mut served = serve_logged(&dir.0.join("store"), &log);
    let addr = served.addr;
    let reader = "secret-user-7c1e:secret-proj-7c1e";
    let writer = "secret-writer-51aa:secret-wproj-51aa:admin";
    let marker = "QUERYMARKER5d2b";
    let traceback =
        "Traceback (most recent call last):\n  File \"x.py\", line 1\nTRACEBACKMARKER93fe: boom\n";
    let sid = "d0000000-0000-4000-8000-000000000001";
    let json = |token| {
        vec![
            ("X-Auth-Token", token),
            ("Content-Type", "application/json"),
        ]
    };
    // (method, path, headers, body, expected status)
    let tb = serde_json::to_string(traceback).unwrap();
    let requests: Vec<Probe<'_>> = vec![
        (
            "PUT",
            format!("/ingest/v1/servers/{sid}?{marker}=1"),
            json(writer),
            r#"{"project_id": "secret-proj-7c1e", "host": "cmp-1"}"#.into(),
            200,
        ),
        (
            "POST",
            format!("/ingest/v1/servers/{sid}/actions"),
            json(writer),
            r#"{"request_id": "req-1", "action": "reboot"}"#.into(),
            201,
        ),
        (
            "POST",
            format!("/ingest/v1/servers/{sid}/actions/req-1/events"),
            json(writer),
            r#"{"event": "compute_reboot"}"#.into(),
            201,
        ),
        (
            "POST",
            format!("/ingest/v1/servers/{sid}/actions/req-1/events/compute_reboot/finish"),
            json(writer),
            format!(r#"{{"result": "Error", "traceback": {tb}, "details": "DETAILSMARKER"}}"#),
            200,
        ),
        // A write that fails, with the traceback in a field it rejects.
        (
            "POST",
            format!("/ingest/v1/servers/{sid}/actions/req-1/finish"),
            json(writer),
            format!(r#"{{"traceback": {tb}}}"#),
            400,
        ),
        // Malformed JSON that carries the traceback.
        (
            "POST",
            format!("/ingest/v1/servers/{sid}/actions"),
            json(writer),
            format!("{{\"request_id\": {tb},"),
            400,
        ),
        (
            "GET",
            format!("/v2.1/servers/{sid}/os-instance-actions?{marker}=x&limit=1"),
            vec![
                ("X-Auth-Token", reader),
                ("OpenStack-API-Version", "compute 2.58"),
            ],
            String::new(),
            400,
        ),
        (
            "GET",
            format!("/v2.1/servers/{sid}/os-instance-actions/req-1?changes-since={marker}"),
            vec![("X-Auth-Token", writer)],
            String::new(),
            200,
        ),
        (
            "GET",
            format!("/v2/servers/{sid}/os-instance-actions?q={marker}"),
            vec![("X-Auth-Token", "other-secret-9d0d:otherproj")],
            String::new(),
            404,
        ),
        (
            "GET",
            format!("/v2.1/servers/{sid}/nothing-here?{marker}"),
            vec![("X-Auth-Token", reader)],
            String::new(),
            404,
        ),
        (
            "GET",
            format!("/v2.1/servers?{marker}"),
            vec![],
            String::new(),
            401,
        ),
    ];
    let mut answered = Vec::new();
    for (method, path, headers, body, status) in &requests {
        let r = send_raw(addr, method, path.as_bytes(), headers, body.as_bytes());
        assert_eq!(r.status, *status, "{method} {path}: {}", r.text());
        let rid = r
            .header("x-openstack-request-id")
            .expect("a request id")
            .to_string();
        answered.push((rid, *method, path.split('?').next().unwrap().to_string(), r));
    }
    // The show as the admin did return the traceback: the log is the only place left to leak.
    assert!(answered[7].3.text().contains("TRACEBACKMARKER93fe"));

    let pid = served.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.is_ok_and(|s| s.success()));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if served.child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the service did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [
        "secret-user-7c1e",
        "secret-proj-7c1e",
        "secret-writer-51aa",
        "secret-wproj-51aa",
        "other-secret-9d0d",
        marker,
        "TRACEBACKMARKER93fe",
        "Traceback",
        "DETAILSMARKER",
    ] {
        assert!(!text.contains(secret), "the log holds {secret:?}:\n{text}");
    }
    let access: Vec<&str> = text.lines().filter(|l| l.contains(" access]")).collect();
    assert_eq!(access.len(), requests.len(), "{text}");
    for (rid, method, path, r) in &answered {
        let lines: Vec<&&str> = access.iter().filter(|l| l.contains(rid.as_str())).collect();
        assert_eq!(lines.len(), 1, "{rid}: {text}");
        let expected = format!("{rid} {method} {path} {} ", r.status);
        assert!(lines[0].contains(&expected), "{expected:?} in {}", lines[0]);
    }
}

const SID: &str = "a0000000-0000-4000-8000-000000000001";

fn export(s: &TestServer) -> String {
    let r = s.send("GET", "/ingest/v1/export", &[("X-Auth-Token", ADMIN)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

#[test]
fn odd_ids_answer_well_formed_4xx_and_the_server_keeps_serving() {
    let s = fixture_server();
    // A unicode request id, stored.
    let stored_rid = "req-ünï-😀-ж";
    let r = s.write(
        "POST",
        &format!("servers/{SID}/actions"),
        ADMIN,
        &serde_json::json!({"request_id": stored_rid, "action": "reboot"}).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let encoded: String = stored_rid
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let show = |rid: &str| format!("/v2.1/servers/{SID}/os-instance-actions/{rid}");
    let r = get_json(&s, &show(&encoded), ADMIN, Some("2.84"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["instanceAction"]["request_id"], stored_rid);
    // Raw UTF-8 bytes in the request line are not a valid request target: the HTTP layer
    // refuses them with a bare 400 before any route runs.
    let r = get_json(&s, &show(stored_rid), ADMIN, Some("2.84"));
    assert_eq!(r.status, 400, "{}", r.text());
    for raw in ["<script>", "\"q\"", "a{b}", "a|b", "a\x7fb", "a\tb"] {
        let r = get_json(&s, &show(raw), ADMIN, Some("2.84"));
        assert!([400, 404].contains(&r.status), "{raw:?}: {r:?}");
        if r.status == 404 {
            fault(&r, 404);
        }
    }

    let long = "x".repeat(10_000);
    // (server id as sent, what the message must name, or None for a route miss)
    let server_ids: Vec<(String, Option<String>)> = vec![
        ("a%2Fb".into(), None),
        (format!("{SID}%2Fx"), None),
        ("%2F".into(), None),
        ("..".into(), Some("..".into())),
        ("%2E%2E".into(), Some("..".into())),
        ("a%00b".into(), Some("a\0b".into())),
        ("%00".into(), Some("\0".into())),
        ("a%FFb".into(), Some("a\u{FFFD}b".into())),
        ("%C3%28".into(), Some("\u{FFFD}(".into())),
        (long.clone(), Some(long.clone())),
        ("%C3%A9t%C3%A9".into(), Some("été".into())),
        ("%F0%9F%98%80".into(), Some("😀".into())),
        ("a%20b".into(), Some("a b".into())),
        ("%22quoted%22".into(), Some("\"quoted\"".into())),
        ("it's".into(), Some("it's".into())),
        ("%27%3B--".into(), Some("';--".into())),
        ("%3Cscript%3E".into(), Some("<script>".into())),
        ("%5Cx".into(), Some("\\x".into())),
        (SID.to_uppercase(), Some(SID.to_uppercase())),
        (format!("{SID}%0A"), Some(format!("{SID}\n"))),
    ];
    for (sent, named) in &server_ids {
        for path in [
            format!("/v2.1/servers/{sent}/os-instance-actions"),
            format!(
                "/v2.1/servers/{sent}/os-instance-actions/req-a1000000-0000-4000-8000-000000000001"
            ),
            format!("/v2/servers/{sent}/os-instance-actions"),
        ] {
            for token in [ADMIN, "user-a:proj-a"] {
                let r = get_json(&s, &path, token, Some("2.84"));
                assert!(!r.body.is_empty(), "{path}: {r:?}");
                // `servers/%2F/os-instance-actions` collapses to `servers/os-instance-actions`:
                // a server lookup for a server of that name, as in Nova.
                if sent == "%2F" && path.ends_with("/os-instance-actions") {
                    let message = fault(&r, 404);
                    assert_eq!(message, "Instance os-instance-actions could not be found.");
                    continue;
                }
                match named {
                    None => route_miss(&r),
                    Some(id) => {
                        let message = fault(&r, 404);
                        assert_eq!(message, format!("Instance {id} could not be found."));
                    }
                }
            }
        }
    }
    let request_ids: Vec<(String, Option<String>)> = vec![
        ("a%2Fb".into(), None),
        ("%2F".into(), None),
        ("..".into(), Some("..".into())),
        ("%2E%2E".into(), Some("..".into())),
        ("req%00".into(), Some("req\0".into())),
        ("req-%FF".into(), Some("req-\u{FFFD}".into())),
        (long.clone(), Some(long.clone())),
        ("req-%C3%A9".into(), Some("req-é".into())),
        ("req-%F0%9F%98%81".into(), Some("req-😁".into())),
        ("req%20x".into(), Some("req x".into())),
        ("%22req%22".into(), Some("\"req\"".into())),
        ("req'x".into(), Some("req'x".into())),
        (
            "REQ-A1000000-0000-4000-8000-000000000001".into(),
            Some("REQ-A1000000-0000-4000-8000-000000000001".into()),
        ),
    ];
    for (sent, named) in &request_ids {
        let path = show(sent);
        for version in ["2.1", "2.84", "latest"] {
            let r = get_json(&s, &path, ADMIN, Some(version));
            match named {
                None => route_miss(&r),
                Some(id) => {
                    let message = fault(&r, 404);
                    assert_eq!(message, format!("Action {id} not found"));
                }
            }
        }
    }

    // The write API: a bad server id is a 400, a bad request id a 404, a split path a route
    // miss (a Nova fault here), and nothing is written.
    let before = export(&s);
    let event = r#"{"event": "compute_reboot"}"#;
    for (sent, _) in &server_ids {
        let r = s.write(
            "POST",
            &format!("servers/{sent}/actions/req-a1000000-0000-4000-8000-000000000001/events"),
            ADMIN,
            event,
        );
        let message = fault(&r, if sent.contains("%2F") { 404 } else { 400 });
        assert!(
            r.status == 404 || message.starts_with("Invalid server id"),
            "{message}"
        );
        let r = s.write(
            "PUT",
            &format!("servers/{sent}"),
            ADMIN,
            r#"{"project_id": "p"}"#,
        );
        assert!([400, 404].contains(&r.status), "{}", r.text());
        fault(&r, r.status);
    }
    for (sent, named) in &request_ids {
        let r = s.write(
            "POST",
            &format!("servers/{SID}/actions/{sent}/events"),
            ADMIN,
            event,
        );
        let message = fault(&r, 404);
        if named.is_some() {
            assert!(message.contains("not found"), "{message}");
        }
        let r = s.write(
            "POST",
            &format!("servers/{SID}/actions/{sent}/events/compute_reboot/finish"),
            ADMIN,
            r#"{"result": "Success"}"#,
        );
        fault(&r, 404);
    }
    // A server id that is fine but unknown, and odd event names on a known action.
    let r = s.write(
        "POST",
        "servers/f0000000-0000-4000-8000-000000000009/actions/req-1/events",
        ADMIN,
        event,
    );
    assert_eq!(
        fault(&r, 404),
        "Instance f0000000-0000-4000-8000-000000000009 could not be found."
    );
    for name in ["%00", "%FF", "a%2Fb", "..", &long] {
        let r = s.write(
            "POST",
            &format!(
                "servers/{SID}/actions/req-a1000000-0000-4000-8000-000000000001/events/{name}/finish"
            ),
            ADMIN,
            r#"{"result": "Success"}"#,
        );
        fault(&r, 404);
    }
    assert_eq!(export(&s), before, "a refused write changed the store");

    // Still serving, and still right.
    let r = get_json(
        &s,
        &format!("/v2.1/servers/{SID}/os-instance-actions"),
        "user-a:proj-a",
        Some("2.84"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["instanceActions"].as_array().unwrap().len(), 11);
}

fn storage_failure(out: &std::process::Output, path: &Path) {
    assert!(!out.status.success(), "serve must fail");
    assert_eq!(out.status.code(), Some(1), "storage failures exit 1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].starts_with("nova-actions: cannot open the store at ")
            && lines[0].contains(&path.display().to_string()),
        "{stderr}"
    );
}

fn serve_once(store: &Path) -> std::process::Output {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = binary()
        .env("RUST_LOG", "off")
        .args(["serve", "--listen", &addr.to_string()])
        .store(store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not exit on a store it cannot open");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_store_that_cannot_be_opened_stops_serve_with_one_line_naming_it() {
    if !crate::backend::embedded_only(
        "a_store_that_cannot_be_opened_stops_serve_with_one_line_naming_it",
    ) {
        return;
    }
    let dir = TempDir::new();
    let file = dir.0.join("a-regular-file");
    std::fs::write(&file, b"not a store").unwrap();
    // A regular file where the directory should be.
    storage_failure(&serve_once(&file), &file);
    // A path under a regular file: fails even for root.
    let under = file.join("store");
    storage_failure(&serve_once(&under), &under);
    // The file was not touched.
    assert_eq!(std::fs::read(&file).unwrap(), b"not a store");
    // A read-only file system, which binds root too.
    if let Some(mount) = Tmpfs::mount("ro,size=1m") {
        let store = mount.path().join("store");
        storage_failure(&serve_once(&store), &store);
    }
}

/// A small tmpfs mounted for one test, unmounted on drop.
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    fn mount(options: &str) -> Option<Tmpfs> {
        let dir = TempDir::new();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(&dir.0)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                println!(
                    "NOTICE: skipped: cannot mount a tmpfs here: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("NOTICE: skipped: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.0.clone()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir.0).status();
    }
}

/// Fills the file system holding `dir` until a write fails with "no space".
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![0xA5u8; 64 * 1024];
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected: {e}");
                break;
            }
        }
    }
    let _ = f.sync_all();
    filler
}

/// CPU time (user + system, in clock ticks) the process has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A server of the fixture that the full-disk test never writes to.
const UNTOUCHED: &str = "b0000000-0000-4000-8000-000000000001";

/// The disk fills while serving: the write whose flush fails and every later one answer 503;
/// what was not acknowledged is never shown (its server answers 503 until a restart), other
/// servers read as before, the health check fails, the service idles and stops on SIGTERM.
/// After space is freed, a restart reads back a consistent store holding every acknowledged
/// write, and writes work again.
#[test]
fn a_full_disk_refuses_writes_hides_what_was_not_acknowledged_and_a_restart_recovers() {
    if !crate::backend::embedded_only(
        "a_full_disk_refuses_writes_hides_what_was_not_acknowledged_and_a_restart_recovers",
    ) {
        return;
    }
    let Some(mount) = Tmpfs::mount("size=32m") else {
        return;
    };
    let dir = TempDir::new();
    let log = dir.0.join("stderr.log");
    let store = mount.path().join("store");
    let mut served = serve_logged(&store, &log);
    let r = send_raw(
        served.addr,
        "POST",
        b"/ingest/v1/import",
        &[("X-Auth-Token", ADMIN)],
        &fixture(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let list = format!("/v2.1/servers/{SID}/os-instance-actions");
    let other = format!("/v2.1/servers/{UNTOUCHED}/os-instance-actions");
    let before_other = get_at(served.addr, &other, ADMIN, "2.84");
    assert_eq!(before_other.status, 200);

    let filler = fill(&mount.path());
    let (acknowledged, refused) = write_until_refused(served.addr);
    assert!(!refused.is_empty(), "a full file system refused no write");
    println!(
        "acknowledged {} writes, refused {}: {refused:?}",
        acknowledged.len(),
        refused.len()
    );

    // The written server's history may hold writes that were never acknowledged: not shown.
    for path in [
        list.clone(),
        format!("{list}/{}", acknowledged_or(&acknowledged)),
    ] {
        let r = get_at(served.addr, &path, ADMIN, "2.84");
        assert_eq!(r.status, 503, "{path}: {}", r.text());
        assert!(
            fault(&r, 503).contains("cannot be shown until the service is restarted"),
            "{}",
            r.text()
        );
    }
    // Other servers read exactly as before; the export refuses rather than being partial.
    let r = get_at(served.addr, &other, ADMIN, "2.84");
    assert_eq!((r.status, r.text()), (200, before_other.text()));
    let r = get_at(served.addr, "/ingest/v1/export", ADMIN, "2.84");
    assert_eq!(r.status, 503, "{}", r.text());
    // Any further write is refused, to any server.
    let r = send_raw(
        served.addr,
        "DELETE",
        format!("/ingest/v1/servers/{UNTOUCHED}").as_bytes(),
        &[("X-Auth-Token", ADMIN)],
        b"",
    );
    assert_eq!(r.status, 503, "{}", r.text());
    // The health check says so, for an orchestrator to restart it.
    let r = get_at(served.addr, "/healthcheck", ADMIN, "2.84");
    assert_eq!((r.status, r.text()), (503, "FAILED".to_string()));

    // Idle after failed flushes: the service must not retry in a loop, burning a core and
    // filling its log.
    let pid = served.child.id();
    let ticks = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let busy = cpu_ticks(pid) - ticks;
    let text = std::fs::read_to_string(&log).unwrap();
    let failures = text.matches("flushing the store failed").count();
    let attempts = acknowledged.len() + refused.len() + 1;
    assert!(
        (1..=attempts).contains(&failures),
        "{failures} flush failures logged for {attempts} writes"
    );
    assert!(text.contains("until the service is restarted"), "{text}");
    assert!(busy < 100, "{busy} ticks of CPU in 2 s of idling");

    // It still stops on SIGTERM (its final flush may fail: the disk is still full).
    stop_with_sigterm(&mut served);
    drop(served);

    // Space freed, restarted: every acknowledged write is there, the store is consistent.
    std::fs::remove_file(filler).unwrap();
    let served = serve_logged(&store, &dir.0.join("restarted.log"));
    let r = get_at(served.addr, "/healthcheck", ADMIN, "2.84");
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = get_at(served.addr, &list, ADMIN, "2.84");
    assert_eq!(listed.status, 200, "{}", listed.text());
    let listed = listed.json();
    let names: Vec<String> = listed["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["request_id"].as_str().unwrap().to_string())
        .collect();
    let shown = get_at(
        served.addr,
        &format!("{list}/{FIXTURE_ACTION}"),
        ADMIN,
        "2.84",
    )
    .json();
    let events: Vec<String> = shown["instanceAction"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    for name in &acknowledged {
        assert!(
            names.contains(name) || events.contains(name),
            "acknowledged write {name} lost"
        );
    }
    let came_back = refused
        .iter()
        .filter(|name| names.contains(name) || events.contains(name))
        .count();
    println!("{came_back} refused writes reached the disk before it filled up");
    let r = get_at(served.addr, &other, ADMIN, "2.84");
    assert_eq!((r.status, r.text()), (200, before_other.text()));
    // And writes work again.
    let body = serde_json::json!({"request_id": "req-after-restart", "action": "reboot"});
    let r = write_at(
        served.addr,
        "POST",
        &format!("servers/{SID}/actions"),
        ADMIN,
        &body.to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

/// An action of `SID` in the fixture; the test adds its events to it.
const FIXTURE_ACTION: &str = "req-a1000000-0000-4000-8000-000000000004";

fn acknowledged_or(acknowledged: &[String]) -> &str {
    acknowledged
        .iter()
        .find(|name| name.starts_with("req-"))
        .map_or(FIXTURE_ACTION, |name| name.as_str())
}

/// Writes actions and big events to `SID` until the full disk refuses one; returns the names
/// of the acknowledged and of the refused writes.
fn write_until_refused(addr: std::net::SocketAddr) -> (Vec<String>, Vec<String>) {
    // Events big enough that sled must grow its log.
    let big = "y".repeat(60 * 1024);
    let (mut acknowledged, mut refused) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let rid = format!("req-full-{i}");
        let body = serde_json::json!({"request_id": rid, "action": "reboot", "start_time": "2030-01-01T00:00:00Z"});
        let r = write_at(
            addr,
            "POST",
            &format!("servers/{SID}/actions"),
            ADMIN,
            &body.to_string(),
        );
        let event = serde_json::json!({"event": format!("ev-{i}"), "details": big});
        let r2 = write_at(
            addr,
            "POST",
            &format!("servers/{SID}/actions/{FIXTURE_ACTION}/events"),
            ADMIN,
            &event.to_string(),
        );
        for (r, name) in [(r, rid), (r2, format!("ev-{i}"))] {
            assert_ne!(r.status, 500, "{}", r.text());
            if r.status == 503 {
                assert!(fault(&r, 503).contains("this write was not acknowledged"));
                assert!(r.text().contains("\"serviceUnavailable\""), "{}", r.text());
                refused.push(name);
            } else {
                assert!([200, 201].contains(&r.status), "{}", r.text());
                assert!(refused.is_empty(), "{name} acknowledged after a refusal");
                acknowledged.push(name);
            }
        }
        if !refused.is_empty() {
            break;
        }
    }
    (acknowledged, refused)
}

fn stop_with_sigterm(served: &mut Logged) {
    let pid = served.child.id();
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    assert!(killed.is_ok_and(|s| s.success()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while served.child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the service does not stop after a failed flush"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
