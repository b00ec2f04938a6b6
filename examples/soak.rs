//! Soak: durable writes, imports and reads together for a while, with a watchdog. The run fails
//! (exit status 1) when any acknowledged write took longer than the limit, when any request is
//! still unanswered after the limit (a stall: it then dumps every thread of the service with
//! gdb), when the service answers an error, or when a window of the run acknowledged no write.
//!
//!     cargo run --release --example soak -- run ADDR SECONDS SERVICE_PID STATE_FILE
//!     cargo run --release --example soak -- verify ADDR STATE_FILE
//!
//! `run` leaves in STATE_FILE how many actions each of its servers was acknowledged; `verify`
//! (after a kill -9 and a restart, say) checks every one of them is there. Tuning by environment:
//! SOAK_WRITERS (32), SOAK_READERS (4), SOAK_WRITE_LIMIT_MS (2000), SOAK_STACKS (where gdb's dump
//! goes, soak-stacks.txt).

#[path = "support/http.rs"]
mod http;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Conn;

const TOKEN: &str = "admin:admin";
/// Writers share these servers, so writes to one server queue on its lock as they do in Nova
/// deployments where one instance gets many events.
const WRITE_SERVERS: usize = 8;
const PAIRS_PER_ACTION: u64 = 3;
/// Imports may legitimately take longer than one write; they are watched for a hang only.
const IMPORT_LIMIT: Duration = Duration::from_secs(30);
const READ_LIMIT: Duration = Duration::from_secs(5);
const WINDOW: Duration = Duration::from_secs(10);

fn write_server(i: usize) -> String {
    format!("50a50000-0000-4000-8000-{i:012}")
}

fn import_server(i: u64) -> String {
    format!("50a5a000-0000-4000-8000-{i:012}")
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What every worker shares with the watchdog.
struct Shared {
    started: Instant,
    stop: AtomicBool,
    failed: Mutex<Vec<String>>,
    /// Per worker: when its request in flight was sent (µs since `started`, +1), 0 when idle.
    in_flight: Vec<AtomicU64>,
    limits: Vec<Duration>,
    names: Vec<String>,
    write_latencies_us: Mutex<Vec<u32>>,
    writes: AtomicU64,
    imports: AtomicU64,
    reads: AtomicU64,
    /// Actions acknowledged per write server.
    actions: Vec<AtomicU64>,
}

impl Shared {
    fn fail(&self, why: String) {
        let mut failed = self.failed.lock().unwrap();
        // The first failures tell the story; the rest (often every client at once) only count.
        if failed.len() < 5 {
            eprintln!("soak: FAIL: {why}");
        }
        failed.push(why);
        self.stop.store(true, Ordering::Relaxed);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Times one request of `worker`, failing the run on a transport error or an error answer.
    fn timed(
        &self,
        worker: usize,
        conn: &mut Conn,
        method: &str,
        path: &str,
        body: &str,
    ) -> Option<(http::Answer, Duration)> {
        let sent = Instant::now();
        let mark = (sent - self.started).as_micros() as u64 + 1;
        self.in_flight[worker].store(mark, Ordering::Relaxed);
        let answer = conn.call(method, path, body);
        self.in_flight[worker].store(0, Ordering::Relaxed);
        let took = sent.elapsed();
        match answer {
            Ok(a) if (200..300).contains(&a.status) => Some((a, took)),
            Ok(a) => {
                let text = String::from_utf8_lossy(&a.body);
                self.fail(format!("{method} {path} answered {}: {text}", a.status));
                None
            }
            Err(e) => {
                self.fail(format!("{method} {path}: {e}"));
                None
            }
        }
    }
}

fn writer(shared: &Shared, worker: usize, addr: &str) {
    let server_index = worker % WRITE_SERVERS;
    let server = write_server(server_index);
    let Ok(mut conn) = Conn::open(addr, TOKEN) else {
        return shared.fail(format!("writer {worker}: cannot connect"));
    };
    let limit = shared.limits[worker];
    let mut n = 0u64;
    let mut latencies = Vec::with_capacity(4096);
    while !shared.stopping() {
        let rid = format!("req-soak-{worker}-{}", n / PAIRS_PER_ACTION);
        let base = format!("/ingest/v1/servers/{server}/actions");
        let mut writes = Vec::with_capacity(3);
        if n % PAIRS_PER_ACTION == 0 {
            let body = format!(r#"{{"request_id": "{rid}", "action": "soak"}}"#);
            writes.push((base.clone(), body, true));
        }
        let event = format!("e{}", n % PAIRS_PER_ACTION);
        let events = format!("{base}/{rid}/events");
        writes.push((
            events.clone(),
            format!(r#"{{"event": "{event}", "host": "h"}}"#),
            false,
        ));
        writes.push((
            format!("{events}/{event}/finish"),
            r#"{"result": "Success"}"#.to_string(),
            false,
        ));
        for (path, body, is_action) in writes {
            let Some((_, took)) = shared.timed(worker, &mut conn, "POST", &path, &body) else {
                return;
            };
            if took > limit {
                shared.fail(format!(
                    "a write was acknowledged after {took:?}: POST {path}"
                ));
            }
            latencies.push(took.as_micros().min(u32::MAX as u128) as u32);
            shared.writes.fetch_add(1, Ordering::Relaxed);
            if is_action {
                shared.actions[server_index].fetch_add(1, Ordering::Relaxed);
            }
        }
        n += 1;
    }
    shared.write_latencies_us.lock().unwrap().extend(latencies);
}

/// One server's history as an import line: 100 actions of 3 events.
fn import_line(server: &str, round: u64) -> String {
    let mut line = format!(
        r#"{{"uuid":"{server}","project_id":"soak","user_id":"soak","host":"h","deleted":false,"actions":["#
    );
    for a in 0..100u64 {
        let minute = a % 60;
        let hour = a / 60;
        if a > 0 {
            line.push(',');
        }
        let _ = write!(
            line,
            r#"{{"request_id":"req-imp-{round}-{a}","action":"reboot","user_id":"soak","project_id":"soak","start_time":"2026-01-01T{hour:02}:{minute:02}:00.000000","updated_at":"2026-01-01T{hour:02}:{minute:02}:09.000000","finish_time":null,"message":null,"events":["#
        );
        for e in 0..3 {
            if e > 0 {
                line.push(',');
            }
            let _ = write!(
                line,
                r#"{{"event":"compute_step_{e}","start_time":"2026-01-01T{hour:02}:{minute:02}:0{e}.000000","finish_time":"2026-01-01T{hour:02}:{minute:02}:0{}.000000","result":"Success","traceback":null,"host":"h","details":null}}"#,
                e + 1
            );
        }
        line.push_str("]}");
    }
    line.push_str("]}\n");
    line
}

/// Imports ten new servers at a time, and every other round the previous batch again (the
/// idempotent path, which reads before it writes).
fn importer(shared: &Shared, worker: usize, addr: &str) {
    let Ok(mut conn) = Conn::open(addr, TOKEN) else {
        return shared.fail("importer: cannot connect".into());
    };
    let mut round = 0u64;
    while !shared.stopping() {
        let first = if round % 2 == 1 { round - 1 } else { round };
        let body: String = (0..10)
            .map(|i| import_line(&import_server(first * 10 + i), first))
            .collect();
        if shared
            .timed(worker, &mut conn, "POST", "/ingest/v1/import", &body)
            .is_none()
        {
            return;
        }
        shared.imports.fetch_add(1, Ordering::Relaxed);
        round += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Lists and shows on the servers being written and imported, checking what comes back.
fn reader(shared: &Shared, worker: usize, addr: &str) {
    let Ok(mut conn) = Conn::open(addr, TOKEN) else {
        return shared.fail(format!("reader {worker}: cannot connect"));
    };
    let mut n = worker as u64;
    while !shared.stopping() {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let path = if n >> 63 == 0 {
            let server = write_server((n >> 32) as usize % WRITE_SERVERS);
            format!("/v2.1/servers/{server}/os-instance-actions?limit=50")
        } else {
            let done = shared.imports.load(Ordering::Relaxed);
            if done == 0 {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            // Rounds come in pairs over the same servers and request ids: an even, finished one.
            let round = 2 * ((n >> 32) % done.div_ceil(2));
            let server = import_server(round * 10 + (n >> 36) % 10);
            format!(
                "/v2.1/servers/{server}/os-instance-actions/req-imp-{round}-{}",
                (n >> 40) % 100
            )
        };
        let Some((answer, _)) = shared.timed(worker, &mut conn, "GET", &path, "") else {
            return;
        };
        if !answer.body.starts_with(b"{\"instanceAction") {
            let text = String::from_utf8_lossy(&answer.body);
            return shared.fail(format!("GET {path}: unexpected body {text:.200}"));
        }
        shared.reads.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every 100 ms: a request in flight for longer than its limit is a stall. Dumps the service's
/// threads once, so the stall can be read afterwards, and stops the run.
fn watchdog(shared: &Shared, pid: &str, stacks: &str) {
    let mut window_start = Instant::now();
    let mut window_writes = 0;
    while !shared.stopping() {
        std::thread::sleep(Duration::from_millis(100));
        let now_us = shared.started.elapsed().as_micros() as u64;
        for (i, slot) in shared.in_flight.iter().enumerate() {
            let mark = slot.load(Ordering::Relaxed);
            if mark == 0 {
                continue;
            }
            let age = Duration::from_micros(now_us.saturating_sub(mark - 1));
            if age > shared.limits[i] {
                dump_stacks(pid, stacks);
                return shared.fail(format!(
                    "{} has waited {age:?} for an answer (limit {:?}); the service's threads are in {stacks}",
                    shared.names[i], shared.limits[i]
                ));
            }
        }
        if window_start.elapsed() >= WINDOW {
            let writes = shared.writes.load(Ordering::Relaxed);
            let rate = (writes - window_writes) as f64 / window_start.elapsed().as_secs_f64();
            eprintln!(
                "soak: {:>4} s: {rate:.0} writes/s, {} imports, {} reads so far",
                shared.started.elapsed().as_secs(),
                shared.imports.load(Ordering::Relaxed),
                shared.reads.load(Ordering::Relaxed)
            );
            if writes == window_writes {
                dump_stacks(pid, stacks);
                return shared.fail(format!("no write was acknowledged for {WINDOW:?}"));
            }
            window_start = Instant::now();
            window_writes = writes;
        }
    }
}

fn dump_stacks(pid: &str, to: &str) {
    let out = std::process::Command::new("gdb")
        .args(["-p", pid, "-batch", "-ex", "thread apply all bt"])
        .output();
    match out {
        Ok(out) => {
            let _ = std::fs::write(to, &out.stdout);
            eprintln!("soak: {} bytes of stacks written to {to}", out.stdout.len());
        }
        Err(e) => eprintln!("soak: gdb could not run ({e}); no stacks"),
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn run(addr: &str, seconds: u64, pid: &str, state: &str) -> ExitCode {
    let writers = env_or("SOAK_WRITERS", 32usize);
    let readers = env_or("SOAK_READERS", 4usize);
    let write_limit = Duration::from_millis(env_or("SOAK_WRITE_LIMIT_MS", 2000));
    let stacks = std::env::var("SOAK_STACKS").unwrap_or_else(|_| "soak-stacks.txt".into());
    let mut setup = Conn::open(addr, TOKEN).expect("connect to the service");
    for i in 0..WRITE_SERVERS {
        let path = format!("/ingest/v1/servers/{}", write_server(i));
        let status = setup.call("PUT", &path, r#"{"project_id": "soak"}"#);
        assert!(matches!(status, Ok(ref a) if a.status == 200 || a.status == 201));
    }
    let mut names = Vec::new();
    let mut limits = Vec::new();
    for w in 0..writers {
        names.push(format!("writer {w}"));
        limits.push(write_limit);
    }
    names.push("importer".into());
    limits.push(IMPORT_LIMIT);
    for r in 0..readers {
        names.push(format!("reader {r}"));
        limits.push(READ_LIMIT);
    }
    let shared = Arc::new(Shared {
        started: Instant::now(),
        stop: AtomicBool::new(false),
        failed: Mutex::new(Vec::new()),
        in_flight: (0..names.len()).map(|_| AtomicU64::new(0)).collect(),
        limits,
        names,
        write_latencies_us: Mutex::new(Vec::new()),
        writes: AtomicU64::new(0),
        imports: AtomicU64::new(0),
        reads: AtomicU64::new(0),
        actions: (0..WRITE_SERVERS).map(|_| AtomicU64::new(0)).collect(),
    });
    let mut threads = Vec::new();
    for worker in 0..shared.names.len() {
        let (shared, addr) = (Arc::clone(&shared), addr.to_string());
        threads.push(std::thread::spawn(move || match worker {
            w if w < writers => writer(&shared, w, &addr),
            w if w == writers => importer(&shared, w, &addr),
            w => reader(&shared, w, &addr),
        }));
    }
    let dog = {
        let (shared, pid, stacks) = (Arc::clone(&shared), pid.to_string(), stacks.clone());
        std::thread::spawn(move || watchdog(&shared, &pid, &stacks))
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline && !shared.stopping() {
        std::thread::sleep(Duration::from_millis(100));
    }
    shared.stop.store(true, Ordering::Relaxed);
    let _ = dog.join();
    for t in threads {
        let _ = t.join();
    }
    let elapsed = shared.started.elapsed().as_secs_f64();
    let mut lat = std::mem::take(&mut *shared.write_latencies_us.lock().unwrap());
    lat.sort_unstable();
    let writes = shared.writes.load(Ordering::Relaxed);
    println!(
        "soak: {elapsed:.0} s, {writers} writers: {writes} writes acknowledged ({:.0}/s), latency p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms; {} imports of 10 servers x 100 actions; {} reads",
        writes as f64 / elapsed,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
        percentile(&lat, 1.0),
        shared.imports.load(Ordering::Relaxed),
        shared.reads.load(Ordering::Relaxed),
    );
    let counts: Vec<String> = shared
        .actions
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{} {}", write_server(i), n.load(Ordering::Relaxed)))
        .collect();
    std::fs::write(state, counts.join("\n") + "\n").expect("write the state file");
    let failed = shared.failed.lock().unwrap();
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!(
            "soak: FAILED ({} failures), first: {}",
            failed.len(),
            failed[..failed.len().min(5)].join("; ")
        );
        ExitCode::FAILURE
    }
}

/// Counts a server's actions by following markers, a page of 1,000 at a time.
fn count_actions(conn: &mut Conn, server: &str) -> Result<u64, String> {
    let mut count = 0;
    let mut marker = String::new();
    loop {
        let mut path = format!("/v2.1/servers/{server}/os-instance-actions?limit=1000");
        if !marker.is_empty() {
            path.push_str("&marker=");
            path.push_str(&marker);
        }
        let answer = conn.call("GET", &path, "").map_err(|e| e.to_string())?;
        if answer.status != 200 {
            return Err(format!("GET {path}: {}", answer.status));
        }
        let page: serde_json::Value =
            serde_json::from_slice(&answer.body).map_err(|e| format!("GET {path}: {e}"))?;
        let actions = page["instanceActions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        count += actions.len() as u64;
        match actions.last().and_then(|a| a["request_id"].as_str()) {
            Some(last) if actions.len() == 1000 => marker = last.to_string(),
            _ => return Ok(count),
        }
    }
}

fn verify(addr: &str, state: &str) -> ExitCode {
    let text = std::fs::read_to_string(state).expect("read the state file");
    let mut conn = Conn::open(addr, TOKEN).expect("connect to the service");
    let mut ok = true;
    for line in text.lines() {
        let Some((server, acked)) = line.split_once(' ') else {
            continue;
        };
        let acked: u64 = acked.parse().expect("a count");
        match count_actions(&mut conn, server) {
            Ok(found) if found >= acked => {
                println!("soak verify: {server}: {found} actions, {acked} acknowledged");
            }
            Ok(found) => {
                println!("soak verify: {server}: LOST: {found} actions, {acked} acknowledged");
                ok = false;
            }
            Err(e) => {
                println!("soak verify: {server}: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["run", addr, seconds, pid, state] => {
            run(addr, seconds.parse().expect("SECONDS"), pid, state)
        }
        ["verify", addr, state] => verify(addr, state),
        _ => {
            eprintln!(
                "usage: soak run ADDR SECONDS SERVICE_PID STATE_FILE | soak verify ADDR STATE_FILE"
            );
            ExitCode::from(2)
        }
    }
}
