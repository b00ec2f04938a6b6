//! What operators use: configuration from the environment, check-config, purge and retention,
//! health checks, metrics, live export, the access log.

use crate::backend::StoreArg;
use crate::cli::{binary, serve};
use crate::common::{ADMIN, TempDir, TestServer, fixture, fixtures_dir, send_raw};

#[test]
fn environment_overrides_show_in_check_config() {
    let dir = TempDir::new();
    let config = dir.0.join("c.toml");
    std::fs::write(&config, "[api]\nmax_limit = 10\n").unwrap();
    let out = binary()
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .env("NOVA_ACTIONS__API__MAX_LIMIT", "25")
        .env("NOVA_ACTIONS__STORAGE__DATA_DIR", "/srv/actions")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("max_limit = 25"), "{text}");
    assert!(text.contains("data_dir = \"/srv/actions\""), "{text}");
    let out = binary()
        .arg("check-config")
        .env("NOVA_ACTIONS__API__MAX_LIMIT", "many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOVA_ACTIONS__API__MAX_LIMIT"));
}

#[test]
fn purge_before_removes_only_servers_deleted_earlier() {
    let dir = TempDir::new();
    let store = dir.0.join("store");
    let file = dir.0.join("h.ndjson");
    let line = |n: u8, deleted_at: &str| {
        format!(
            r#"{{"uuid":"c{n}000000-0000-4000-8000-000000000001","project_id":"p","deleted":true,"deleted_at":"{deleted_at}","actions":[{{"request_id":"r","action":"delete","start_time":"2020-01-01T00:00:00"}}]}}"#
        )
    };
    let alive = r#"{"uuid":"c3000000-0000-4000-8000-000000000001","project_id":"p","actions":[]}"#;
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n{alive}\n",
            line(1, "2020-01-01T00:00:00"),
            line(2, "2024-06-01T00:00:00")
        ),
    )
    .unwrap();
    assert!(
        binary()
            .arg("import")
            .store(&store)
            .arg(&file)
            .status()
            .unwrap()
            .success()
    );
    let out = binary()
        .args(["purge", "--before", "2023-01-01"])
        .store(&store)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("purged 1 servers"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = binary().arg("export").store(&store).output().unwrap();
    let exported = String::from_utf8(out.stdout).unwrap();
    assert!(
        !exported.contains("c1000000")
            && exported.contains("c2000000")
            && exported.contains("c3000000")
    );
    let out = binary()
        .args(["purge", "--before", "yesterday"])
        .store(&store)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn healthcheck_answers_ok_without_credentials() {
    let s = TestServer::start();
    let r = s.send("GET", "/healthcheck", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "OK"));
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=UTF-8"));
    let served = serve(&TempDir::new().0.join("store"));
    let out = binary()
        .args(["health", "--addr", &served.addr.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn metrics_count_requests_by_route_status_and_version() {
    let s = TestServer::start();
    assert_eq!(s.import(&fixture()).status, 200);
    let path = "/v2.1/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions";
    assert_eq!(s.get(path, ADMIN, "2.84").status, 200);
    assert_eq!(s.get(path, ADMIN, "2.84").status, 200);
    assert_eq!(
        s.get("/v2.1/servers/nope/os-instance-actions", ADMIN, "2.1")
            .status,
        404
    );
    let r = s.send("GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    for expected in [
        r#"nova_actions_requests_total{route="list",method="GET",status="200",microversion="2.84"} 2"#,
        r#"nova_actions_requests_total{route="list",method="GET",status="404",microversion="2.1"} 1"#,
        r#"nova_actions_requests_total{route="ingest",method="POST",status="200",microversion=""} 1"#,
        "# TYPE nova_actions_request_duration_seconds histogram",
        r#"nova_actions_request_duration_seconds_count{route="list"} 3"#,
        "# TYPE nova_actions_store_size_bytes gauge",
        "nova_actions_store_flush_duration_seconds_count ",
    ] {
        assert!(text.contains(expected), "missing {expected}:\n{text}");
    }
}

#[test]
fn live_export_streams_the_same_ndjson_as_the_cli() {
    let s = TestServer::start();
    assert_eq!(s.import(&fixture()).status, 200);
    let r = send_raw(
        s.addr,
        "GET",
        b"/ingest/v1/export",
        &[("X-Auth-Token", ADMIN)],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/x-ndjson"));
    assert_eq!(
        r.body,
        std::fs::read(fixtures_dir().join("golden/fixture.ndjson")).unwrap()
    );
    let r = send_raw(
        s.addr,
        "GET",
        b"/ingest/v1/export",
        &[("X-Auth-Token", "user-a:proj-a")],
        b"",
    );
    assert_eq!(r.status, 403);
}

#[test]
fn a_running_store_refuses_the_offline_commands_clearly() {
    if !crate::backend::embedded_only("a_running_store_refuses_the_offline_commands_clearly") {
        return;
    }
    let dir = TempDir::new();
    let store = dir.0.join("store");
    let _served = serve(&store);
    let out = binary().arg("export").store(&store).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another process"));
}

#[test]
fn scheduled_retention_purges_old_deleted_servers() {
    let s = TestServer::with_config(|c| {
        c.retention.deleted_servers_after = Some("30d".parse().unwrap());
        c.retention.interval = "1s".parse().unwrap();
    });
    let old = r#"{"uuid":"c4000000-0000-4000-8000-000000000001","project_id":"p","deleted":true,"deleted_at":"2001-01-01T00:00:00","actions":[]}"#;
    let recent = r#"{"uuid":"c5000000-0000-4000-8000-000000000001","project_id":"p","actions":[]}"#;
    assert_eq!(
        s.import(format!("{old}\n{recent}\n").as_bytes()).status,
        200
    );
    let path = |id: &str| format!("/v2.1/servers/{id}/os-instance-actions");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s
        .get(&path("c4000000-0000-4000-8000-000000000001"), ADMIN, "2.21")
        .status
        != 404
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the deleted server was never purged"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        s.get(&path("c5000000-0000-4000-8000-000000000001"), ADMIN, "2.21")
            .status,
        200
    );
}

fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut std::process::Child, within: std::time::Duration) -> Option<i32> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the service did not exit"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Whether a fresh connection gets an answer within half a second.
fn served_a_new_request(addr: std::net::SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    stream
        .set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    if stream
        .write_all(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(n) if n > 0)
}

/// Opens a connection and sends an import's head and the first half of its body.
fn half_sent_import(addr: std::net::SocketAddr, body: &[u8]) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /ingest/v1/import HTTP/1.1\r\nHost: x\r\nX-Auth-Token: admin:admin\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..body.len() / 2]).unwrap();
    stream
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    use std::io::{Read, Write};
    let dir = TempDir::new();
    let mut served = serve(&dir.0.join("store"));
    let body = fixture();
    let mut stream = half_sent_import(served.addr, &body);
    std::thread::sleep(std::time::Duration::from_millis(200));
    signal(&served.child, "TERM");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !served_a_new_request(served.addr),
        "nothing new is served after SIGTERM"
    );
    stream.write_all(&body[body.len() / 2..]).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        wait_exit(&mut served.child, std::time::Duration::from_secs(20)),
        Some(0)
    );
    // What was imported during the shutdown is in the store.
    let out = crate::cli::binary()
        .arg("export")
        .store(dir.0.join("store"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, body);
}

#[test]
fn a_second_signal_exits_at_once() {
    let dir = TempDir::new();
    let mut served = serve(&dir.0.join("store"));
    let _stuck = half_sent_import(served.addr, &fixture());
    std::thread::sleep(std::time::Duration::from_millis(200));
    signal(&served.child, "INT");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        served.child.try_wait().unwrap(),
        None,
        "still finishing the in-flight request"
    );
    signal(&served.child, "INT");
    assert_eq!(
        wait_exit(&mut served.child, std::time::Duration::from_secs(5)),
        Some(130)
    );
}

#[test]
fn oversized_write_bodies_are_413_over_limit() {
    let s = TestServer::with_config(|c| c.server.max_body_bytes = 100);
    let body = format!(r#"{{"project_id": "{}"}}"#, "p".repeat(200));
    let r = s.write(
        "PUT",
        "servers/c6000000-0000-4000-8000-000000000001",
        ADMIN,
        &body,
    );
    assert_eq!(r.status, 413);
    assert_eq!(
        r.text(),
        r#"{"overLimit": {"code": 413, "message": "Request body is larger than 100 bytes."}}"#
    );
}

/// actix-http refuses a request head over 128 KiB with 431; a header well under it is served.
#[test]
fn oversized_headers_are_refused_and_the_server_keeps_serving() {
    use std::io::{Read, Write};
    let s = TestServer::start();
    assert_eq!(
        s.send(
            "GET",
            "/healthcheck",
            &[("X-Padding", &"x".repeat(16 * 1024))],
            b""
        )
        .status,
        200
    );
    let mut stream = std::net::TcpStream::connect(s.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "GET /healthcheck HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "x".repeat(200 * 1024)
    );
    // The server may answer and close before the whole head is sent.
    let _ = stream.write_all(head.as_bytes());
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    // Closing on a client still sending can turn into a reset that hides the 431: either way
    // the request is never served.
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 431") || answer.is_empty(),
        "{text}"
    );
    assert_eq!(s.send("GET", "/healthcheck", &[], b"").status, 200);
}

#[test]
fn a_slow_client_is_cut_off_and_the_server_keeps_serving() {
    use std::io::{Read, Write};
    let s = TestServer::with_config(|c| c.server.request_timeout = "1s".parse().unwrap());
    let mut slow = std::net::TcpStream::connect(s.addr).unwrap();
    slow.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    slow.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    let waited = started.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(5),
        "cut off after {waited:?}"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    assert_eq!(s.send("GET", "/healthcheck", &[], b"").status, 200);
}

/// Opens a connection and has one keep-alive request answered on it, so that the server holds
/// it open afterwards.
fn held_connection(addr: std::net::SocketAddr) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 512];
    let n = conn.read(&mut answer).unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    conn
}

/// Past `max_connections`, a new connection waits (it is not refused, and nothing breaks) until
/// a held one is let go; then it is served. actix frees the slot of an idle kept-alive
/// connection when its keep-alive time runs out, even if the client closed it earlier.
#[test]
fn connections_past_the_cap_wait_until_one_closes() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let s = TestServer::with_config(|c| {
        c.server.workers = 1;
        c.server.max_connections = 2;
        c.server.keep_alive = "2s".parse().unwrap();
    });
    let first = held_connection(s.addr);
    let _second = held_connection(s.addr);
    let mut third = std::net::TcpStream::connect(s.addr).unwrap();
    third
        .write_all(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut answer = Vec::new();
    let waited = third.read_to_end(&mut answer);
    assert!(
        waited.is_err() && answer.is_empty(),
        "a third connection was served past a cap of two: {}",
        String::from_utf8_lossy(&answer)
    );
    // A flood past the cap neither crashes nor wedges the server.
    let flood: Vec<_> = (0..64)
        .filter_map(|_| std::net::TcpStream::connect(s.addr).ok())
        .collect();
    drop(flood);
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let _ = third.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(6));
    drop(third);
    // The slots the flood took are given back as its connections close.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut conn = std::net::TcpStream::connect(s.addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        conn.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = conn.read_to_end(&mut answer);
        if answer.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the server stays wedged");
    }
}
