//! Hostile input, second round: what a hostile or careless client can do through the ingest
//! API and the connection itself: concurrent imports, endless lines, huge echoed values,
//! multi-byte text, `?_method=` on writes, spoofed proxy headers, slow bodies, idle sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use nova_actions::timeutil::format_micros;
use serde_json::Value;

use crate::common::{ADMIN, Response, TestServer, get_at, parse_response, send_raw, write_at};
use crate::durability::{EPOCH, bounded};

const SID: &str = "c6000000-0000-4000-8000-000000000001";

/// NDJSON of `servers` servers with `actions` finished actions of one event each.
pub(crate) fn histories(prefix: &str, servers: usize, actions: usize) -> String {
    let mut out = String::new();
    for s in 0..servers {
        out.push_str(&format!(
            r#"{{"uuid":"{prefix}-0000-4000-8000-{s:012}","project_id":"p","actions":["#
        ));
        for a in 0..actions {
            if a > 0 {
                out.push(',');
            }
            let t = EPOCH + (a as i64) * 1_000_000;
            out.push_str(&format!(
                r#"{{"request_id":"req-{a}","action":"stop","start_time":"{}","events":[{{"event":"ev","start_time":"{}","finish_time":"{}","result":"Success"}}]}}"#,
                format_micros(t),
                format_micros(t + 1),
                format_micros(t + 2)
            ));
        }
        out.push_str("]}\n");
    }
    out
}

fn export(addr: SocketAddr) -> String {
    let r = get_at(addr, "/ingest/v1/export", ADMIN, "2.1");
    assert_eq!(r.status, 200);
    r.text()
}

fn import_at(addr: SocketAddr, ndjson: &[u8]) -> Response {
    send_raw(
        addr,
        "POST",
        b"/ingest/v1/import",
        &[("X-Auth-Token", ADMIN)],
        ndjson,
    )
}

fn assert_fault(r: &Response, code: u16, needle: &str) {
    assert_eq!(r.status, code, "{}", r.text());
    let message = r.json()[nova_fault_name(code)]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no fault: {}", r.text()))
        .to_string();
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
}

fn nova_fault_name(code: u16) -> &'static str {
    match code {
        400 => "badRequest",
        404 => "itemNotFound",
        413 => "overLimit",
        _ => "computeFault",
    }
}

#[test]
fn concurrent_imports_of_one_file_store_it_once() {
    let ndjson = histories("c6100000", 30, 200);
    let once = TestServer::start();
    assert_eq!(once.import(ndjson.as_bytes()).status, 200);
    let want = export(once.addr);

    // As many workers as importers, so that all eight run at once whatever the service does
    // with them.
    let server = TestServer::with_config(|c| c.server.workers = 8);
    let addr = server.addr;
    let barrier = Arc::new(Barrier::new(8));
    let importers: Vec<_> = (0..8)
        .map(|_| {
            let (barrier, ndjson) = (Arc::clone(&barrier), ndjson.clone());
            std::thread::spawn(move || {
                barrier.wait();
                import_at(addr, ndjson.as_bytes())
            })
        })
        .collect();
    let answers: Vec<Response> = bounded(Duration::from_secs(120), "imports", move || {
        importers.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut stored = 0;
    for r in &answers {
        assert_eq!(r.status, 200, "{}", r.text());
        let counts = &r.json()["imported"];
        assert_eq!(
            counts["actions"].as_u64().unwrap() + counts["unchanged"].as_u64().unwrap(),
            30 * 200,
            "{counts}"
        );
        stored += counts["actions"].as_u64().unwrap();
    }
    assert_eq!(
        stored,
        30 * 200,
        "the eight imports stored more than one copy"
    );
    assert_eq!(export(addr), want);
}

#[test]
fn writes_racing_imports_of_the_same_servers_lose_nothing_and_double_nothing() {
    let server = TestServer::start();
    let addr = server.addr;
    let ndjson = histories("c6200000", 4, 100);
    assert_eq!(server.import(ndjson.as_bytes()).status, 200);
    let importers: Vec<_> = (0..3)
        .map(|_| {
            let ndjson = ndjson.clone();
            std::thread::spawn(move || import_at(addr, ndjson.as_bytes()).status)
        })
        .collect();
    let writers: Vec<_> = (0..4)
        .map(|s| {
            std::thread::spawn(move || {
                let sid = format!("c6200000-0000-4000-8000-{s:012}");
                (0..40)
                    .map(|i| {
                        let t = EPOCH + 500_000_000 + i * 1_000_000;
                        let body = format!(
                            r#"{{"request_id": "req-w{i}", "action": "start", "start_time": "{}"}}"#,
                            format_micros(t)
                        );
                        write_at(addr, "POST", &format!("servers/{sid}/actions"), ADMIN, &body)
                            .status
                    })
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let (imports, writes) = bounded(Duration::from_secs(120), "racing writes", move || {
        let i: Vec<u16> = importers.into_iter().map(|t| t.join().unwrap()).collect();
        let w: Vec<Vec<u16>> = writers.into_iter().map(|t| t.join().unwrap()).collect();
        (i, w)
    });
    assert_eq!(imports, vec![200; 3]);
    assert!(writes.iter().flatten().all(|s| *s == 201), "{writes:?}");
    for s in 0..4 {
        let sid = format!("c6200000-0000-4000-8000-{s:012}");
        let r = get_at(
            addr,
            &format!("/v2.1/servers/{sid}/os-instance-actions"),
            ADMIN,
            "2.84",
        );
        let ids: Vec<String> = r.json()["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["request_id"].as_str().unwrap().to_string())
            .collect();
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(ids.len(), 140, "{sid}");
        assert_eq!(unique.len(), 140, "{sid}: a request id is stored twice");
    }
}

#[test]
fn an_import_line_over_the_limit_is_refused_by_number_and_the_connection_closed() {
    let server = TestServer::with_config(|c| c.storage.max_import_line_bytes = 100_000);
    let mut body = histories("c6300000", 1, 3).into_bytes();
    body.extend(vec![b'x'; 300_000]);
    body.extend_from_slice(b"\n");
    body.extend_from_slice(histories("c6300001", 1, 3).as_bytes());
    let r = server.import(&body);
    assert_fault(&r, 413, "Line 2 is longer than 100000 bytes");
    assert!(
        r.text().contains("the 1 servers before it were imported"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("connection"), Some("close"));
    let exported = export(server.addr);
    assert!(exported.contains("c6300000-0000-4000-8000-000000000000"));
    assert!(!exported.contains("c6300001"));
    // A line just under the limit still goes in.
    let line = histories("c6300002", 1, 3);
    assert!(line.len() < 100_000);
    assert_eq!(server.import(line.as_bytes()).status, 200);
}

/// Time to answer a list on a fresh connection, in microseconds.
fn list_latency(addr: SocketAddr) -> u128 {
    let started = Instant::now();
    let path = "/v2.1/servers/c6400001-0000-4000-8000-000000000000/os-instance-actions";
    let r = get_at(addr, path, ADMIN, "2.84");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["instanceActions"].as_array().unwrap().len(), 10);
    started.elapsed().as_micros()
}

#[test]
fn other_requests_stay_fast_while_a_large_line_is_imported() {
    let server = TestServer::start();
    let addr = server.addr;
    assert_eq!(
        server
            .import(histories("c6400001", 1, 10).as_bytes())
            .status,
        200
    );
    // One history of ~25 MB: cutting, parsing and storing it takes seconds in a debug build.
    let big = histories("c6400000", 1, 100_000);
    let mut body = big.into_bytes();
    body.extend_from_slice(b"{\"uuid\": [\"");
    body.extend(vec![b'y'; 20 << 20]);
    body.extend_from_slice(b"\"]}\n");
    let size = body.len();
    let import = std::thread::spawn(move || {
        let started = Instant::now();
        let r = import_at(addr, &body);
        (r, started.elapsed())
    });
    let mut latencies = Vec::new();
    let t0 = Instant::now();
    while !import.is_finished() {
        let l = list_latency(addr);
        if l > 30_000 {
            eprintln!("at {:?}: {l}", t0.elapsed());
        }
        latencies.push(l);
        std::thread::sleep(Duration::from_millis(5));
    }
    let (r, took) = import.join().unwrap();
    assert_fault(&r, 400, "Line 2:");
    assert!(r.body.len() < 2000, "a fault of {} bytes", r.body.len());
    latencies.sort_unstable();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "{} GETs during a {size}-byte import ({took:?}): median {} µs, p99 {p99} µs, max {} µs",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies.last().unwrap()
    );
    assert!(latencies.len() >= 20, "the import was too quick to measure");
    assert!(p99 < 50_000, "p99 {p99} µs during an import");
}

#[test]
fn faults_echo_a_bounded_excerpt_of_the_input() {
    let server = TestServer::start();
    let huge = "z".repeat(10 << 20);
    let line = format!(
        r#"{{"uuid":"{SID}","project_id":"p","actions":[{{"request_id":["{huge}"],"action":"stop","start_time":"2020-01-01T00:00:00Z"}}]}}"#
    );
    let r = server.import(line.as_bytes());
    assert_fault(&r, 400, "actions[0].request_id");
    assert!(r.body.len() < 1500, "a fault of {} bytes", r.body.len());
    assert!(r.text().contains("zzz\\u2026"), "{}", r.text());
    let key = format!(r#"{{"project_id": "p", "{huge}": 1}}"#);
    let r = server.write("PUT", &format!("servers/{SID}"), ADMIN, &key);
    // Over the 1 MiB body limit; within it, the key is cut short.
    assert_fault(&r, 413, "larger than");
    let key = format!(r#"{{"project_id": "p", "{}": 1}}"#, "k".repeat(500_000));
    let r = server.write("PUT", &format!("servers/{SID}"), ADMIN, &key);
    assert_fault(&r, 400, "Additional properties are not allowed");
    assert!(r.body.len() < 1500, "a fault of {} bytes", r.body.len());
}

#[test]
fn free_text_is_limited_in_bytes() {
    let server = TestServer::with_config(|c| c.storage.max_text_bytes = 1024);
    assert_eq!(
        server
            .write(
                "PUT",
                &format!("servers/{SID}"),
                ADMIN,
                r#"{"project_id": "p"}"#
            )
            .status,
        200
    );
    let start = r#"{"request_id": "req-1", "action": "stop"}"#;
    let path = format!("servers/{SID}/actions");
    assert_eq!(server.write("POST", &path, ADMIN, start).status, 201);
    let events = format!("servers/{SID}/actions/req-1/events");
    assert_eq!(
        server
            .write("POST", &events, ADMIN, r#"{"event": "ev", "host": "h"}"#)
            .status,
        201
    );
    let finish = format!("servers/{SID}/actions/req-1/events/ev/finish");
    // 257 four-byte characters: 1028 bytes, 257 characters.
    let traceback = |n: usize| {
        format!(
            r#"{{"result": "Error", "traceback": "{}"}}"#,
            "\u{1F600}".repeat(n)
        )
    };
    let r = server.write("POST", &finish, ADMIN, &traceback(257));
    assert_fault(&r, 400, "longer than 1024 bytes");
    assert_eq!(
        server.write("POST", &finish, ADMIN, &traceback(256)).status,
        200
    );
}

#[test]
fn method_overrides_never_reach_the_write_routes() {
    let server = TestServer::start();
    let put = server.write(
        "PUT",
        &format!("servers/{SID}"),
        ADMIN,
        r#"{"project_id": "p"}"#,
    );
    assert_eq!(put.status, 200);
    for (path, method) in [
        (format!("/ingest/v1/servers/{SID}?_method=DELETE"), "GET"),
        (
            format!("/ingest/v1/servers/{SID}/purge?_method=POST"),
            "GET",
        ),
        (
            format!("/ingest/v1/servers/{SID}/purge?_method=POST"),
            "HEAD",
        ),
    ] {
        let r = send_raw(
            server.addr,
            method,
            path.as_bytes(),
            &[("X-Auth-Token", ADMIN)],
            b"",
        );
        assert_eq!(r.status, 404, "{method} {path}");
    }
    let export = export(server.addr);
    let line: Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert_eq!(line["uuid"], SID);
    assert_eq!(line["deleted"], false, "{line}");
}

fn next_link(addr: SocketAddr, headers: &[(&str, &str)]) -> String {
    let mut all = vec![
        ("X-Auth-Token", ADMIN),
        ("OpenStack-API-Version", "compute 2.84"),
    ];
    all.extend_from_slice(headers);
    let path = format!("/v2.1/servers/{SID}/os-instance-actions?limit=1");
    let r = send_raw(addr, "GET", path.as_bytes(), &all, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["links"][0]["href"].as_str().unwrap().to_string()
}

const PROXY_HEADERS: &[(&str, &str)] = &[
    ("X-Forwarded-Proto", "gopher"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Prefix", "/compute"),
    ("Forwarded", "proto=https;host=compute.example"),
];

#[test]
fn links_follow_proxy_headers_only_when_told_to() {
    for parse in [false, true] {
        let server = TestServer::with_config(|c| c.api.enable_proxy_headers_parsing = parse);
        assert_eq!(
            server.import(histories("c6000000", 2, 2).as_bytes()).status,
            200
        );
        let href = next_link(server.addr, PROXY_HEADERS);
        let tail = format!("/v2.1/servers/{SID}/os-instance-actions?limit=1&marker=req-1");
        let want = if parse {
            format!("https://compute.example/compute{tail}")
        } else {
            format!("http://{}{tail}", server.addr)
        };
        assert_eq!(href, want, "enable_proxy_headers_parsing = {parse}");
        if parse {
            let x_only = &PROXY_HEADERS[..2];
            assert_eq!(
                next_link(server.addr, x_only),
                format!("gopher://evil.example{tail}"),
                "without Forwarded, the X- headers count (as oslo reads them)"
            );
        }
    }
}

/// Sends `head` and then `body_part`, leaving the rest of the declared body unsent; returns
/// the answer and how long it took.
fn stall(addr: SocketAddr, head: &str, body_part: &[u8]) -> (Response, Duration, TcpStream) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body_part).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the answer is complete or the server closes.
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => panic!("no answer after {:?}: {e}", started.elapsed()),
        }
    }
    (parse_response(&raw, false), started.elapsed(), stream)
}

#[test]
fn slow_bodies_get_408_and_the_connection_is_closed() {
    let server = TestServer::with_config(|c| c.server.body_timeout = "1s".parse().unwrap());
    let head = format!(
        "PUT /ingest/v1/servers/{SID} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    let (r, took, _) = stall(server.addr, &head, b"{");
    assert_fault(&r, 408, "did not arrive within 1 seconds");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(took < Duration::from_secs(5), "{took:?}");
    // An import may take long in all, but not pause longer than the timeout.
    let head = format!(
        "POST /ingest/v1/import HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ADMIN}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    let (r, took, _) = stall(server.addr, &head, b"3\r\n{\"u\r\n");
    assert_fault(&r, 408, "body_timeout");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        get_at(
            server.addr,
            &format!("/v2.1/servers/{SID}/os-instance-actions"),
            ADMIN,
            "2.84"
        )
        .status,
        404,
        "nothing was written"
    );
}

#[test]
fn an_oversized_body_is_answered_413_and_the_rest_is_not_read() {
    let server = TestServer::with_config(|c| c.server.max_body_bytes = 1000);
    // Declared too large: refused before any of it is read.
    let head = format!(
        "PUT /ingest/v1/servers/{SID} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ADMIN}\r\n\
         Content-Length: 10000000\r\n\r\n"
    );
    let (r, took, _) = stall(server.addr, &head, b"{");
    assert_fault(&r, 413, "larger than 1000 bytes");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(took < Duration::from_secs(2), "{took:?}");
    // Chunked, so only reading tells: the answer comes once the limit is passed, and then the
    // server stops reading (a client still sending finds the connection closed).
    let head = format!(
        "PUT /ingest/v1/servers/{SID} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ADMIN}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    let chunk = format!("800\r\n{}\r\n", " ".repeat(0x800));
    let (r, _, mut stream) = stall(server.addr, &head, chunk.as_bytes());
    assert_fault(&r, 413, "larger than 1000 bytes");
    assert_eq!(r.header("connection"), Some("close"));
    let more = chunk.repeat(64);
    let refused = (0..200).any(|_| stream.write_all(more.as_bytes()).is_err());
    assert!(refused, "the server kept reading after its 413");
}

#[test]
fn a_crowd_of_idle_sockets_does_not_lock_out_a_client() {
    let (_, files) = nova_actions::fd_limit::raise_open_files().unwrap();
    const IDLE: usize = 2000;
    if files < (2 * IDLE + 500) as u64 {
        eprintln!(
            "skipped: {files} open files allowed, the test needs {}",
            2 * IDLE + 500
        );
        return;
    }
    // One worker, as on a one-core host: its connection cap is the whole service's.
    let server = TestServer::with_config(|c| c.server.workers = 1);
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    // Let the worker accept them all before the client comes.
    std::thread::sleep(Duration::from_millis(500));
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let r = get_at(server.addr, "/healthcheck", ADMIN, "2.1");
        assert_eq!(r.status, 200);
        worst = worst.max(started.elapsed());
    }
    eprintln!("with {IDLE} idle sockets open, the slowest of 5 GETs took {worst:?}");
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    drop(idle);
}
