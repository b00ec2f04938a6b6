//! What only the PostgreSQL backend has: query plans, several nodes over one database, a
//! database that goes away and comes back, schema versions, and moving stores between
//! backends. Each test needs `NOVA_ACTIONS_TEST_POSTGRES_URL` (a role that may create
//! databases) and skips with a message without it; the tests that stop and start PostgreSQL
//! run a private server of their own with `scripts/postgres/throwaway.sh`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backend::{create_database, postgres_for, rows, sql};
use crate::cli::{Served, binary};
use crate::common::TempDir;
use crate::durability::{http, must};

/// A database of its own for one test.
fn fresh_database(url: &str, test: &str) -> String {
    let name = format!("p_{}_{}", test, uuid::Uuid::new_v4().simple());
    create_database(url, &name[..name.len().min(60)])
}

/// `nova-actions serve` on `database`, its log in `log`.
fn node(database: &str, log: &Path, env: &[(&str, &str)]) -> Served {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut command = binary();
    command
        .env("RUST_LOG", "info")
        .env("NOVA_ACTIONS__STORAGE__BACKEND", "postgres")
        .env("NOVA_ACTIONS__POSTGRES__URL", database)
        .env("NOVA_ACTIONS__API__MAX_LIMIT", "1000000")
        .args(["serve", "--listen", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "node did not start: {}",
            read(log)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Served { child, addr }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn cli(database: &str, args: &[&str]) -> std::process::Output {
    binary()
        .env("NOVA_ACTIONS__STORAGE__BACKEND", "postgres")
        .env("NOVA_ACTIONS__POSTGRES__URL", database)
        .args(args)
        .output()
        .unwrap()
}

fn sid(n: u64) -> String {
    format!("d{n:07}-0000-4000-8000-000000000000")
}

// ----- plans -----

/// The plan of `statement` with these parameters, as PostgreSQL would run it both ways a
/// prepared statement can be planned (for these values, and generically).
fn plans(database: &str, statement: &str, types: &str, values: &str) -> Vec<String> {
    ["force_custom_plan", "force_generic_plan"]
        .iter()
        .map(|mode| {
            let script = format!(
                "SET plan_cache_mode = {mode}; PREPARE q ({types}) AS {statement}; \
                 EXPLAIN EXECUTE q({values}); DEALLOCATE q;"
            );
            let out = sql(database, &script).unwrap();
            out.into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

fn assert_index_only(what: &str, plan: &str) {
    assert!(
        plan.contains("Index Scan") || plan.contains("Index Only Scan"),
        "{what}: no index scan\n{plan}"
    );
    for bad in ["Seq Scan", "Sort", "Bitmap Heap Scan"] {
        assert!(!plan.contains(bad), "{what}: {bad}\n{plan}");
    }
}

#[test]
fn list_marker_and_time_filter_pages_are_index_scans_on_a_long_history() {
    let Some(url) = postgres_for("list_marker_and_time_filter_pages_are_index_scans") else {
        return;
    };
    let database = fresh_database(&url, "plans");
    let dir = TempDir::new();
    // The node creates the schema; the history is written with SQL (100,000 actions of one
    // server among 50 others), then analysed as autovacuum would.
    drop(node(&database, &dir.0.join("log"), &[]));
    sql(
        &database,
        "INSERT INTO servers (instance_uuid, record, project_id, created_key, seq)
             SELECT ('d' || lpad(n::text, 7, '0') || '-0000-4000-8000-000000000000')::uuid, '\\x01',
                    'p' || (n % 5), n, n
             FROM generate_series(0, 50) n;
         INSERT INTO actions (instance_uuid, start_time, seq, request_id, updated_at, action, events)
             SELECT ('d' || lpad((n % 51)::text, 7, '0') || '-0000-4000-8000-000000000000')::uuid,
                    1000000 * n::bigint, n, convert_to('req-' || n, 'UTF8'), 1000000 * n::bigint + 500, '\\x01', '\\x01'
             FROM generate_series(1, 105000) n;
         UPDATE servers SET lag_min = 500, lag_max = 500;
         ANALYZE servers; ANALYZE actions;",
    )
    .unwrap();
    let long = &sid(0);
    // One server with 100,000 actions: the rest go to server 0.
    sql(
        &database,
        &format!(
            "INSERT INTO actions (instance_uuid, start_time, seq, request_id, updated_at, action, events)
                 SELECT '{long}', 2000000 * n::bigint + 1, 200000 + n, convert_to('long-' || n, 'UTF8'),
                        2000000 * n::bigint + 501, '\\x01', '\\x01'
                 FROM generate_series(1, 97942) n;
             ANALYZE actions;"
        ),
    )
    .unwrap();
    let count = rows(
        &database,
        &format!("SELECT count(*) FROM actions WHERE instance_uuid = '{long}'"),
    );
    assert_eq!(count[0][0], "100000");
    let page = nova_actions::store::postgres::page_sql;
    let cases = [
        (
            "list page",
            page(false, false),
            "uuid, bigint",
            format!("'{long}', 1000"),
        ),
        (
            "marker page",
            page(true, false),
            "uuid, bigint, bigint, bigint",
            format!("'{long}', 1000, 100000000001, 200050000"),
        ),
        (
            "changes-since page",
            page(false, true),
            "uuid, bigint, bigint, bigint, bigint, bigint",
            format!("'{long}', 1000, 99999500, 9223372036854775807, 100000000, NULL"),
        ),
        (
            "changes-before after a marker",
            page(true, true),
            "uuid, bigint, bigint, bigint, bigint, bigint, bigint, bigint",
            format!(
                "'{long}', 1000, 100000000001, 200050000, -9223372036854775808, 50000000000, NULL, 50000000500"
            ),
        ),
        (
            "show / marker lookup",
            nova_actions::store::postgres::NEWEST_BY_REQUEST.to_string(),
            "uuid, bytea",
            format!("'{long}', convert_to('long-777', 'UTF8')"),
        ),
    ];
    for (what, statement, types, values) in cases {
        for plan in plans(&database, &statement, types, &values) {
            assert_index_only(what, &plan);
        }
    }
    // The list page reads newest first along the primary key, stopping at the limit.
    let list = plans(
        &database,
        &page(false, false),
        "uuid, bigint",
        &format!("'{long}', 50"),
    );
    assert!(
        list[0].contains("Index Scan Backward using actions_pkey"),
        "{}",
        list[0]
    );
}

/// Server listings (all servers, one project's; first page and after a marker) are backward
/// scans of the listing indexes that stop at the page, on 100,000 servers: a project that owns
/// 1% of them is read from its own index, never by filtering the global one.
#[test]
fn server_listing_pages_are_index_scans_over_many_servers() {
    let Some(url) = postgres_for("server_listing_pages_are_index_scans") else {
        return;
    };
    let database = fresh_database(&url, "server_plans");
    let dir = TempDir::new();
    drop(node(&database, &dir.0.join("log"), &[]));
    sql(
        &database,
        "INSERT INTO servers (instance_uuid, record, project_id, created_key, seq)
             SELECT ('e' || lpad(n::text, 7, '0') || '-0000-4000-8000-000000000000')::uuid, '\\x02',
                    CASE WHEN n % 100 = 0 THEN 'rare' ELSE 'big' END, 1000000 * (n / 3)::bigint, n
             FROM generate_series(0, 99999) n;
         ANALYZE servers;",
    )
    .unwrap();
    let listing = nova_actions::store::postgres::listing_sql;
    let marker = "e0050000-0000-4000-8000-000000000000";
    let cases = [
        (
            "all servers",
            listing(false, false),
            "bigint",
            "50".to_string(),
            "servers_listed",
        ),
        (
            "all servers after a marker",
            listing(false, true),
            "bigint, bigint, bigint, uuid",
            format!("50, 16666000000, 50000, '{marker}'"),
            "servers_listed",
        ),
        (
            "one project",
            listing(true, false),
            "bigint, text",
            "50, 'rare'".to_string(),
            "servers_listed_by_project",
        ),
        (
            "one project after a marker",
            listing(true, true),
            "bigint, text, bigint, bigint, uuid",
            format!("50, 'rare', 16666000000, 50000, '{marker}'"),
            "servers_listed_by_project",
        ),
    ];
    for (what, statement, types, values, index) in cases {
        for plan in plans(&database, statement, types, &values) {
            assert_index_only(what, &plan);
            assert!(
                plan.contains(&format!("Index Scan Backward using {index} ")),
                "{what}: not a backward scan of {index}\n{plan}"
            );
        }
    }
}

// ----- several nodes -----

#[test]
fn two_nodes_over_one_database_see_each_others_writes_and_serialize_on_a_server() {
    let Some(url) = postgres_for("two_nodes_over_one_database") else {
        return;
    };
    let database = fresh_database(&url, "nodes");
    let dir = TempDir::new();
    let a = node(&database, &dir.0.join("a.log"), &[]);
    let b = node(&database, &dir.0.join("b.log"), &[]);
    let nodes = [a.addr, b.addr];
    // A write acknowledged by A is readable from B at once.
    let s0 = sid(1);
    must(
        a.addr,
        "PUT",
        &format!("/ingest/v1/servers/{s0}"),
        r#"{"project_id": "p"}"#,
        200,
    );
    must(
        a.addr,
        "POST",
        &format!("/ingest/v1/servers/{s0}/actions"),
        r#"{"request_id": "req-first", "action": "create"}"#,
        201,
    );
    let listed = must(
        b.addr,
        "GET",
        &format!("/v2.1/servers/{s0}/os-instance-actions"),
        "",
        200,
    );
    assert_eq!(listed["instanceActions"][0]["request_id"], "req-first");

    // 16 writers, split across both nodes, all on the same actions of the same servers: each
    // starts and finishes an event of its own on every action (read-modify-write of one record
    // from two processes), and repeats every write once as a retry through the other node.
    const WRITERS: u64 = 16;
    const SERVERS: u64 = 2;
    const ACTIONS: u64 = 4;
    let base = 1_700_000_000_000_000i64;
    for s in 0..SERVERS {
        must(
            a.addr,
            "PUT",
            &format!("/ingest/v1/servers/{}", sid(100 + s)),
            r#"{"project_id": "p"}"#,
            200,
        );
        for k in 0..ACTIONS {
            let start = nova_actions::timeutil::format_micros(base + k as i64);
            must(
                nodes[k as usize % 2],
                "POST",
                &format!("/ingest/v1/servers/{}/actions", sid(100 + s)),
                &format!(
                    r#"{{"request_id": "req-{k}", "action": "reboot", "start_time": "{start}"}}"#
                ),
                201,
            );
        }
    }
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            std::thread::spawn(move || {
                for s in 0..SERVERS {
                    for k in 0..ACTIONS {
                        let path =
                            format!("/ingest/v1/servers/{}/actions/req-{k}/events", sid(100 + s));
                        let started =
                            nova_actions::timeutil::format_micros(base + 1_000 + w as i64);
                        let finished =
                            nova_actions::timeutil::format_micros(base + 2_000 + w as i64);
                        let event = format!("ev-{w:02}");
                        let start = format!(
                            r#"{{"event": "{event}", "host": "h{w}", "start_time": "{started}"}}"#
                        );
                        let finish =
                            format!(r#"{{"result": "Success", "finish_time": "{finished}"}}"#);
                        // A second event of the same name, started later: the finish must
                        // go to the oldest one, as Nova's does.
                        let later = nova_actions::timeutil::format_micros(base + 3_000 + w as i64);
                        let start_later = format!(
                            r#"{{"event": "{event}", "host": "h{w}", "start_time": "{later}"}}"#
                        );
                        let (first, retry) = (nodes[w as usize % 2], nodes[(w as usize + 1) % 2]);
                        must(first, "POST", &path, &start, 201);
                        must(retry, "POST", &path, &start, 200);
                        must(first, "POST", &path, &start_later, 201);
                        must(
                            first,
                            "POST",
                            &format!("{path}/{event}/finish"),
                            &finish,
                            200,
                        );
                        must(
                            retry,
                            "POST",
                            &format!("{path}/{event}/finish"),
                            &finish,
                            200,
                        );
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // The model: every action has each writer's two events exactly once, the older finished
    // and the newer open (none lost to a concurrent read-modify-write on the other node, none
    // doubled by a retry, the finish on the oldest of the name).
    for s in 0..SERVERS {
        for k in 0..ACTIONS {
            let shown = must(
                nodes[(s + k) as usize % 2],
                "GET",
                &format!("/v2.1/servers/{}/os-instance-actions/req-{k}", sid(100 + s)),
                "",
                200,
            );
            let events = shown["instanceAction"]["events"].as_array().unwrap();
            // Nova shows events in the order they were recorded (newest first), which here is
            // whichever writer got there first: compare as sets.
            let mut seen: Vec<(String, String, Option<String>)> = events
                .iter()
                .map(|e| {
                    let writer: u64 = e["event"].as_str().unwrap()[3..].parse().unwrap();
                    assert_eq!(e["host"], Value::from(format!("h{writer}")));
                    (
                        e["event"].as_str().unwrap().to_string(),
                        e["start_time"].as_str().unwrap().to_string(),
                        e["finish_time"].as_str().map(str::to_string),
                    )
                })
                .collect();
            seen.sort();
            let mut model: Vec<(String, String, Option<String>)> = (0..WRITERS as i64)
                .flat_map(|w| {
                    let name = format!("ev-{w:02}");
                    let at = |t: i64| nova_actions::timeutil::format_micros(base + t + w);
                    [
                        (name.clone(), at(1_000), Some(at(2_000))),
                        (name, at(3_000), None),
                    ]
                })
                .collect();
            model.sort();
            assert_eq!(seen, model, "server {s} action {k}");
            let updated = shown["instanceAction"]["updated_at"]
                .as_str()
                .unwrap()
                .to_string();
            // Bumped by every write: to the time of whichever was applied last.
            let written: Vec<String> = (0..WRITERS as i64)
                .flat_map(|w| [base + 1_000 + w, base + 2_000 + w, base + 3_000 + w])
                .map(nova_actions::timeutil::format_micros)
                .collect();
            assert!(
                written.contains(&updated),
                "updated_at {updated} is no time written"
            );
        }
    }
}

// ----- the database going away -----

/// A PostgreSQL server of this test's own, on `port`, that it may stop and start.
struct PrivateServer {
    port: u16,
}

impl PrivateServer {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres/throwaway.sh")
    }

    fn run(&self, verb: &str) {
        let out = Command::new("bash")
            .arg(Self::script())
            .args([verb, &self.port.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "throwaway.sh {verb}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(port: u16) -> Option<PrivateServer> {
        let out = Command::new("bash")
            .arg(Self::script())
            .args(["start", &port.to_string()])
            .output()
            .ok()?;
        if !out.status.success() {
            crate::backend::say(&format!(
                "SKIPPED: cannot start a private PostgreSQL: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            return None;
        }
        Some(PrivateServer { port })
    }

    fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .args(["stop", &self.port.to_string()])
            .output();
    }
}

fn status(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Duration) {
    let started = Instant::now();
    let code = http(addr, method, path, body).map_or(0, |(s, _)| s);
    (code, started.elapsed())
}

#[test]
fn a_database_that_goes_away_gets_503s_and_the_nodes_recover_on_their_own() {
    if postgres_for("a_database_that_goes_away").is_none() {
        return;
    }
    // Below Linux's ephemeral range (32768-60999): while this server is paused, the sockets
    // other tests open on port 0 must not be able to take its port.
    let port = 30_000 + (std::process::id() % 2_000) as u16;
    let Some(pg) = PrivateServer::start(port) else {
        return;
    };
    let dir = TempDir::new();
    let log = dir.0.join("node.log");
    let timeouts = [
        ("NOVA_ACTIONS__POSTGRES__CONNECT_TIMEOUT", "1s"),
        ("NOVA_ACTIONS__POSTGRES__STATEMENT_TIMEOUT", "2s"),
    ];
    let database = pg.url();

    // Unreachable at start: the node serves 503 and retries, one log line per attempt.
    pg.run("pause");
    let n = node(&database, &log, &timeouts);
    let (code, _) = status(n.addr, "GET", "/healthcheck", "");
    assert_eq!(code, 503);
    let (code, _) = status(
        n.addr,
        "GET",
        &format!("/v2.1/servers/{}/os-instance-actions", sid(5)),
        "",
    );
    assert_eq!(code, 503);
    std::thread::sleep(Duration::from_millis(1_700));
    let said = read(&log);
    assert!(
        said.contains("(attempt 1)") && said.contains("(attempt 2)"),
        "{said}"
    );
    pg.run("resume");
    wait_for(n.addr, "/healthcheck", 200, Duration::from_secs(15));
    log_says(&log, "connected to PostgreSQL");

    // Under load, PostgreSQL stops: every answer is 503 (never 500) within the timeouts, the
    // health check says so, and all comes back without a restart once it is back.
    let server = sid(6);
    must(
        n.addr,
        "PUT",
        &format!("/ingest/v1/servers/{server}"),
        r#"{"project_id": "p"}"#,
        200,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, seq, addr, server) =
                (Arc::clone(&stop), Arc::clone(&seq), n.addr, server.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let k = seq.fetch_add(1, Ordering::Relaxed);
                    let body = format!(r#"{{"request_id": "req-{k}", "action": "reboot"}}"#);
                    seen.push(status(
                        addr,
                        "POST",
                        &format!("/ingest/v1/servers/{server}/actions"),
                        &body,
                    ));
                    seen.push(status(
                        addr,
                        "GET",
                        &format!("/v2.1/servers/{server}/os-instance-actions"),
                        "",
                    ));
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    pg.run("pause");
    std::thread::sleep(Duration::from_millis(2_000));
    let (health, _) = status(n.addr, "GET", "/healthcheck", "");
    pg.run("resume");
    wait_for(
        n.addr,
        &format!("/v2.1/servers/{server}/os-instance-actions"),
        200,
        Duration::from_secs(20),
    );
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<(u16, Duration)> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_eq!(health, 503, "health check while the database was down");
    let refused = seen.iter().filter(|(s, _)| *s == 503).count();
    assert!(refused > 0, "no request met the outage");
    for (code, took) in &seen {
        assert!(matches!(code, 200 | 201 | 503), "answered {code}");
        assert!(*took < Duration::from_secs(6), "an answer took {took:?}");
    }
    let (code, _) = status(
        n.addr,
        "POST",
        &format!("/ingest/v1/servers/{server}/actions"),
        r#"{"request_id": "req-after", "action": "stop"}"#,
    );
    assert_eq!(code, 201, "writes after the database came back");
    let (code, _) = status(n.addr, "GET", "/healthcheck", "");
    assert_eq!(code, 200);
}

/// Waits (a little: the log is written in batches) for `text` in the log.
fn log_says(log: &Path, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !read(log).contains(text) {
        assert!(
            Instant::now() < deadline,
            "the log never said {text:?}:\n{}",
            read(log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for(addr: SocketAddr, path: &str, want: u16, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let (code, _) = status(addr, "GET", path, "");
        if code == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still {code} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ----- schema -----

#[test]
fn a_schema_newer_than_the_binary_is_refused_and_check_config_reports_the_version() {
    let Some(url) = postgres_for("a_schema_newer_than_the_binary_is_refused") else {
        return;
    };
    let database = fresh_database(&url, "schema");
    let out = cli(&database, &["check-config"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let newest = nova_actions::store::postgres::SCHEMA_VERSION;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "schema version {newest} (this binary's newest: {newest})"
        )),
        "{text}"
    );
    sql(
        &database,
        &format!(
            "INSERT INTO schema_migrations (version) VALUES ({})",
            newest + 1
        ),
    )
    .unwrap();
    let out = cli(&database, &["serve", "--listen", "127.0.0.1:0"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("newer than this binary"), "{said}");
    // Nothing was changed.
    let versions = rows(&database, "SELECT max(version) FROM schema_migrations");
    assert_eq!(versions[0][0], (newest + 1).to_string());
}

/// A database at schema 1 (before servers had listing columns) is migrated in place: the
/// columns are filled from the records and the servers are listed in Nova's order.
#[test]
fn schema_1_is_migrated_with_its_servers_listed() {
    let Some(url) = postgres_for("schema_1_is_migrated_with_its_servers_listed") else {
        return;
    };
    let database = fresh_database(&url, "schema1");
    let fixture = crate::common::fixtures_dir().join("servers-golden/fixture.ndjson");
    let out = cli(&database, &["import", fixture.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Back to what schema 1 was: no listing columns, indexes or sequence.
    sql(
        &database,
        "DROP INDEX servers_listed; DROP INDEX servers_listed_by_project;
         ALTER TABLE servers DROP COLUMN project_id, DROP COLUMN created_key, DROP COLUMN seq;
         DROP SEQUENCE server_seq; DROP TABLE meta;
         DELETE FROM schema_migrations WHERE version >= 2;",
    )
    .unwrap();
    let out = cli(&database, &["check-config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let filled = rows(
        &database,
        "SELECT count(project_id), count(DISTINCT project_id),
                (SELECT max(version) FROM schema_migrations) FROM servers",
    );
    let newest = nova_actions::store::postgres::SCHEMA_VERSION.to_string();
    assert_eq!(filled[0], ["12".to_string(), "3".into(), newest]);
    let dir = TempDir::new();
    let served = node(&database, &dir.0.join("log"), &[]);
    let (status, body) = http(served.addr, "GET", "/v2.1/servers?all_tenants=1", "").unwrap();
    assert_eq!(status, 200);
    let listed: Value = serde_json::from_slice(&body).unwrap();
    let ids: Vec<&str> = listed["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    // The fixture's live servers, newest created first; A4 and A5 share a creation time and
    // keep the registration order the import gave them (A4 was imported later: first, as in
    // Nova).
    let expected: Vec<String> = [
        "a6", "b3", "a4", "a5", "b2", "e1", "a3", "a2", "b1", "a7", "a1",
    ]
    .iter()
    .map(|n| format!("{}0000000-0000-4000-8000-00000000000{}", &n[..1], &n[1..]))
    .collect();
    assert_eq!(ids, expected, "{listed}");
}

#[test]
fn many_nodes_starting_at_once_migrate_once() {
    let Some(url) = postgres_for("many_nodes_starting_at_once_migrate_once") else {
        return;
    };
    let database = fresh_database(&url, "race");
    let children: Vec<_> = (0..6)
        .map(|_| {
            binary()
                .env("NOVA_ACTIONS__STORAGE__BACKEND", "postgres")
                .env("NOVA_ACTIONS__POSTGRES__URL", &database)
                .arg("check-config")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let applied = rows(
        &database,
        "SELECT count(*), max(version) FROM schema_migrations",
    );
    let newest = nova_actions::store::postgres::SCHEMA_VERSION.to_string();
    assert_eq!(applied[0], vec![newest.clone(), newest]);
}

// ----- moving between backends -----

#[test]
fn copy_moves_a_store_to_postgres_and_back_with_identical_exports() {
    let Some(url) = postgres_for("copy_moves_a_store_to_postgres_and_back") else {
        return;
    };
    let database = fresh_database(&url, "copy");
    let dir = TempDir::new();
    let (sled_a, sled_b) = (dir.0.join("a"), dir.0.join("b"));
    let fixture = crate::common::fixtures_dir().join("golden/fixture.ndjson");
    let run = |args: &[&str]| {
        let out = binary().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let a = sled_a.to_str().unwrap();
    let b = sled_b.to_str().unwrap();
    run(&["import", "--data-dir", a, fixture.to_str().unwrap()]);
    let to_pg = format!("postgres:{database}");
    let first = run(&["copy", "--from", &format!("sled:{a}"), "--to", &to_pg]);
    assert!(String::from_utf8_lossy(&first.stderr).contains("(0 actions already there)"));
    // Idempotent: a second run finds everything there.
    let again = run(&["copy", "--from", &format!("sled:{a}"), "--to", &to_pg]);
    let said = String::from_utf8_lossy(&again.stderr).to_string();
    assert!(said.contains(", 0 actions, 0 events"), "{said}");
    run(&["copy", "--from", &to_pg, "--to", &format!("sled:{b}")]);
    let export_a = run(&["export", "--data-dir", a]).stdout;
    let export_pg = cli(&database, &["export"]).stdout;
    let export_b = run(&["export", "--data-dir", b]).stdout;
    assert_eq!(
        export_a,
        std::fs::read(&fixture).unwrap(),
        "the sled store holds the fixture"
    );
    assert_eq!(
        String::from_utf8_lossy(&export_pg),
        String::from_utf8_lossy(&export_a)
    );
    assert_eq!(export_b, export_a);
    // A password never shows in what copy prints.
    let out = binary()
        .args([
            "copy",
            "--from",
            "postgres:postgresql://u:hunter2@127.0.0.1:1/x",
            "--to",
            &format!("sled:{b}"),
        ])
        .env("NOVA_ACTIONS__POSTGRES__CONNECT_TIMEOUT", "1s")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!said.contains("hunter2"), "{said}");
}
