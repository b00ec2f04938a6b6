//! Durability and concurrency over HTTP.
//!
//! * `acknowledged_writes_survive_repeated_kill_9`: the real binary under 8 concurrent writers is
//!   killed with SIGKILL at random moments (and sometimes while it is starting), restarted on the
//!   same store, and everything it acknowledged must be there, exactly. Replay a run with
//!   `NOVA_ACTIONS_CRASH_SEED=<seed>`; `NOVA_ACTIONS_CRASH_CYCLES` sets the number of kills.
//! * Concurrent event finishes of one action, a purge racing readers, and an HTTP import racing
//!   writes to other servers, each bounded by timeouts.

use crate::backend::StoreArg;
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nova_actions::config::Config;
use nova_actions::model::ServerHistory;
use nova_actions::timeutil::{Micros, format_micros};
use serde_json::Value;

use crate::cli::binary;
use crate::common::{ADMIN, TestServer};

// ----- a small client that reports failures instead of panicking -----

pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Token: {ADMIN}\r\n\
         OpenStack-API-Version: compute 2.84\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let bad = || std::io::Error::other("truncated response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let rest = &raw[split + 4..];
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(rest).ok_or_else(bad)?
    } else {
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        if length.is_some_and(|n| n != rest.len()) {
            return Err(bad());
        }
        rest.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..end]).ok()?.trim(), 16).ok()?;
        data = data.get(end + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

pub(crate) fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// xorshift64*: small, seedable, good enough to pick moments and choices.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

// ----- the crash test -----

const WRITERS: usize = 8;
const SERVERS: usize = 4;
/// 2020-01-01T00:00:00 UTC.
pub(crate) const EPOCH: Micros = 1_577_836_800_000_000;

fn server_uuid(n: usize) -> String {
    format!("c0000000-0000-4000-8000-{n:012}")
}

#[derive(Debug, Clone)]
struct ExpEvent {
    name: String,
    start: Micros,
    finish: Option<(Micros, String)>,
}

#[derive(Debug, Clone)]
struct ExpAction {
    server: usize,
    rid: String,
    start: Micros,
    updated: Micros,
    error: bool,
    events: Vec<ExpEvent>,
    /// Its start was sent but not acknowledged: it may or may not exist.
    maybe: bool,
    cycle: u64,
}

/// A write that was in flight when the process died: applied or not, both are fine, but it must
/// be all or nothing and, once seen after a restart, it must stay.
#[derive(Debug, Clone)]
enum Pending {
    Upsert {
        server: usize,
        host: String,
    },
    StartAction {
        action: usize,
    },
    StartEvent {
        action: usize,
        event: ExpEvent,
    },
    FinishEvent {
        action: usize,
        name: String,
        at: Micros,
        result: String,
    },
}

#[derive(Default)]
struct Expected {
    actions: Vec<ExpAction>,
    hosts: Vec<String>,
    acknowledged: u64,
}

struct WriterOutcome {
    actions: Vec<ExpAction>,
    host: Option<String>,
    pending: Option<Pending>,
    acknowledged: u64,
}

fn post(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: String,
) -> std::io::Result<(u16, Vec<u8>)> {
    http(addr, method, &format!("/ingest/v1/{path}"), &body)
}

/// One writer's program for one cycle: sequential writes, each recorded once acknowledged.
fn writer(addr: SocketAddr, w: usize, cycle: u64, seed: u64) -> WriterOutcome {
    let mut rng = Rng::new(seed ^ ((cycle + 1) << 20) ^ (w as u64 + 1));
    let server = w % SERVERS;
    let sid = server_uuid(server);
    let mut out = WriterOutcome {
        actions: Vec::new(),
        host: None,
        pending: None,
        acknowledged: 0,
    };
    // Sends one write; Ok(true) when acknowledged, Ok(false) when the process is gone (the write
    // may or may not have been applied).
    let send = |method: &str, path: String, body: String, want: u16| -> bool {
        match post(addr, method, &path, body.clone()) {
            Ok((status, _)) if status == want => true,
            Ok((status, reply)) => {
                out_failure(&path, &body, status, &reply);
                false
            }
            Err(_) => false,
        }
    };
    fn out_failure(path: &str, body: &str, status: u16, reply: &[u8]) {
        eprintln!(
            "unexpected answer: {path} {body} -> {status} {}",
            String::from_utf8_lossy(reply)
        );
        FAILED.store(true, Ordering::SeqCst);
    }
    for i in 0.. {
        let base = EPOCH + (cycle as i64) * 1_000_000_000_000 + (i as i64) * 10_000_000 + w as i64;
        if w < SERVERS && i % 4 == 0 {
            let host = format!("h-{cycle}-{i}");
            out.pending = Some(Pending::Upsert {
                server,
                host: host.clone(),
            });
            let body = format!(r#"{{"project_id": "p", "host": "{host}"}}"#);
            if !send("PUT", format!("servers/{sid}"), body, 200) {
                break;
            }
            out.pending = None;
            out.host = Some(host);
            out.acknowledged += 1;
        }
        // Now and then a new action reuses an earlier request id: it is newer, so it is the one
        // the index must name and the one later events go to.
        let rid = match out.actions.last() {
            Some(prev) if rng.chance(6) => prev.rid.clone(),
            _ => format!("req-{cycle}-{w}-{i}"),
        };
        out.actions.push(ExpAction {
            server,
            rid: rid.clone(),
            start: base,
            updated: base,
            error: false,
            events: Vec::new(),
            maybe: true,
            cycle,
        });
        let a = out.actions.len() - 1;
        out.pending = Some(Pending::StartAction { action: a });
        let body = format!(
            r#"{{"request_id": "{rid}", "action": "reboot", "start_time": "{}"}}"#,
            format_micros(base)
        );
        if !send("POST", format!("servers/{sid}/actions"), body, 201) {
            break;
        }
        out.pending = None;
        out.actions[a].maybe = false;
        out.acknowledged += 1;
        let events = 1 + rng.below(3) as usize;
        let mut alive = true;
        for e in 0..events {
            let event = ExpEvent {
                name: format!("ev{e}"),
                start: base + 1 + rng.below(9_000_000) as i64,
                finish: None,
            };
            out.pending = Some(Pending::StartEvent {
                action: a,
                event: event.clone(),
            });
            let body = format!(
                r#"{{"event": "{}", "host": "cmp", "start_time": "{}"}}"#,
                event.name,
                format_micros(event.start)
            );
            let path = format!("servers/{sid}/actions/{rid}/events");
            if !send("POST", path.clone(), body.clone(), 201) {
                alive = false;
                break;
            }
            out.pending = None;
            out.actions[a].updated = event.start;
            out.actions[a].events.push(event);
            out.acknowledged += 1;
            if rng.chance(8) {
                // A client retry of an acknowledged write: 200 and nothing changes.
                if !send("POST", path, body, 200) {
                    alive = false;
                    break;
                }
            }
        }
        if !alive {
            break;
        }
        let mut order: Vec<usize> = (0..events).collect();
        for k in (1..order.len()).rev() {
            order.swap(k, rng.below(k as u64 + 1) as usize);
        }
        for e in order {
            let name = format!("ev{e}");
            let at = base + 1 + rng.below(9_000_000) as i64;
            let result = if rng.chance(4) { "Error" } else { "Success" };
            out.pending = Some(Pending::FinishEvent {
                action: a,
                name: name.clone(),
                at,
                result: result.into(),
            });
            let body = format!(
                r#"{{"result": "{result}", "finish_time": "{}"}}"#,
                format_micros(at)
            );
            if !send(
                "POST",
                format!("servers/{sid}/actions/{rid}/events/{name}/finish"),
                body,
                200,
            ) {
                alive = false;
                break;
            }
            out.pending = None;
            let act = &mut out.actions[a];
            act.updated = at;
            act.error |= result == "Error";
            act.events[e].finish = Some((at, result.into()));
            out.acknowledged += 1;
        }
        if !alive {
            break;
        }
    }
    out
}

static FAILED: AtomicBool = AtomicBool::new(false);

/// A store directory kept for inspection when the test fails.
pub(crate) struct StoreDir(pub(crate) PathBuf);

impl Drop for StoreDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("store kept for inspection: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub(crate) struct Process {
    child: Child,
    pub(crate) addr: SocketAddr,
    stderr: PathBuf,
}

impl Process {
    pub(crate) fn spawn(store: &Path, log: &Path) -> Process {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = binary()
            // One page holds the whole history: with request ids used twice, a marker (a
            // request id) names the newer action, so paging could not be checked exactly.
            .env("NOVA_ACTIONS__API__MAX_LIMIT", "1000000")
            .args(["serve", "--listen", &addr.to_string()])
            .store(store)
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        Process {
            child,
            addr,
            stderr: log.to_path_buf(),
        }
    }

    /// Waits until it serves; Err(what it said) when it exits instead.
    pub(crate) fn ready(&mut self) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            if TcpStream::connect(self.addr).is_ok() {
                return Ok(started.elapsed());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let said = std::fs::read_to_string(&self.stderr).unwrap_or_default();
                return Err(format!("exited with {status}: {said}"));
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err("did not listen within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub(crate) fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn time_of(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// Reads the whole store back (export for the complete records, then the read API at 2.84 as an
/// admin) and checks it against what was acknowledged. Settles the writes that were in flight.
fn verify(
    addr: SocketAddr,
    expected: &mut Expected,
    pending: &mut Vec<Pending>,
    shows_from_cycle: u64,
    context: &str,
) {
    let (status, body) = http(addr, "GET", "/ingest/v1/export", "").expect("export");
    assert_eq!(status, 200, "{context}: export");
    let limits = nova_actions::limits(&Config::default());
    let mut exported: BTreeMap<String, ServerHistory> = BTreeMap::new();
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let h = nova_actions::ndjson::parse_line(line, limits).expect("exported line parses");
        exported.insert(h.uuid.hyphenated().to_string(), h);
    }
    let find = |exported: &BTreeMap<String, ServerHistory>, a: &ExpAction| {
        exported[&server_uuid(a.server)]
            .actions
            .iter()
            .find(|(s, _)| s.request_id == a.rid && s.start_time == a.start)
            .cloned()
    };
    // Settle the writes in flight at the kill: applied (whole) or not at all.
    for p in pending.drain(..) {
        match p {
            Pending::Upsert { server, host } => {
                if exported[&server_uuid(server)].server.host.as_deref() == Some(&host) {
                    expected.hosts[server] = host;
                }
            }
            Pending::StartAction { action } => {
                let present = find(&exported, &expected.actions[action]).is_some();
                expected.actions[action].maybe = !present;
            }
            Pending::StartEvent { action, event } => {
                let a = &mut expected.actions[action];
                if let Some((_, events)) = find(&exported, a) {
                    if events.iter().any(|e| e.event == event.name) {
                        a.updated = event.start;
                        a.events.push(event);
                    }
                }
            }
            Pending::FinishEvent {
                action,
                name,
                at,
                result,
            } => {
                let a = &mut expected.actions[action];
                if let Some((_, events)) = find(&exported, a) {
                    if events
                        .iter()
                        .any(|e| e.event == name && e.finish_time == Some(at))
                    {
                        a.updated = at;
                        a.error |= result == "Error";
                        let e = a.events.iter_mut().find(|e| e.name == name).unwrap();
                        e.finish = Some((at, result));
                    }
                }
            }
        }
    }
    expected.actions.retain(|a| !a.maybe);
    // Exactly what was acknowledged, per server, oldest first.
    for (n, host) in expected.hosts.iter().enumerate() {
        let sid = server_uuid(n);
        let history = &exported[&sid];
        assert_eq!(
            history.server.host.as_deref(),
            Some(host.as_str()),
            "{context}: host of {sid}"
        );
        let mut want: Vec<&ExpAction> = expected.actions.iter().filter(|a| a.server == n).collect();
        want.sort_by_key(|a| a.start);
        let got: Vec<(String, Micros)> = history
            .actions
            .iter()
            .map(|(a, _)| (a.request_id.clone(), a.start_time))
            .collect();
        let want_keys: Vec<(String, Micros)> =
            want.iter().map(|a| (a.rid.clone(), a.start)).collect();
        assert_same(&got, &want_keys, &format!("{context}: actions of {sid}"));
        for (exp, (action, events)) in want.iter().zip(&history.actions) {
            let what = format!("{context}: {sid} {} @{}", exp.rid, exp.start);
            assert_eq!(action.updated_at, Some(exp.updated), "{what}: updated_at");
            assert_eq!(
                action.message.as_deref(),
                exp.error.then_some("Error"),
                "{what}: message"
            );
            assert_eq!(action.finish_time, None, "{what}: finish_time");
            let got: Vec<_> = events
                .iter()
                .map(|e| {
                    (
                        e.event.clone(),
                        e.start_time,
                        e.finish_time,
                        e.result.clone(),
                    )
                })
                .collect();
            let want: Vec<_> = exp
                .events
                .iter()
                .map(|e| {
                    (
                        e.name.clone(),
                        Some(e.start),
                        e.finish.as_ref().map(|f| f.0),
                        e.finish.as_ref().map(|f| f.1.clone()),
                    )
                })
                .collect();
            assert_eq!(got, want, "{what}: events");
        }
        // The read API: the list at 2.84, newest first, and show by request id finds the newest
        // action with that id, with its events.
        let listed = list_all(addr, &sid, context);
        let want_listed: Vec<(String, String, Option<String>, Option<String>)> = want
            .iter()
            .rev()
            .map(|a| {
                (
                    a.rid.clone(),
                    format_micros(a.start),
                    Some(format_micros(a.updated)),
                    a.error.then(|| "Error".to_string()),
                )
            })
            .collect();
        let got_listed: Vec<_> = listed
            .iter()
            .map(|a| {
                (
                    a["request_id"].as_str().unwrap().to_string(),
                    a["start_time"].as_str().unwrap().to_string(),
                    time_of(&a["updated_at"]),
                    a["message"].as_str().map(str::to_string),
                )
            })
            .collect();
        assert_same(
            &got_listed,
            &want_listed,
            &format!("{context}: list of {sid} at 2.84"),
        );
        let mut shown = HashSet::new();
        for (a, exp) in listed.iter().zip(want.iter().rev()) {
            if exp.cycle < shows_from_cycle || !shown.insert(exp.rid.clone()) {
                continue;
            }
            let path = format!("/v2.1/servers/{sid}/os-instance-actions/{}", exp.rid);
            let (status, body) = http(addr, "GET", &path, "").expect("show");
            assert_eq!(status, 200, "{context}: show {path}");
            let shown = json(&body)["instanceAction"].clone();
            for key in ["request_id", "start_time", "updated_at", "message"] {
                assert_eq!(shown[key], a[key], "{context}: show {path}: {key}");
            }
            let events = shown["events"].as_array().unwrap();
            assert_eq!(
                events.len(),
                exp.events.len(),
                "{context}: events of {path}"
            );
            for (e, x) in events.iter().zip(exp.events.iter().rev()) {
                assert_eq!(e["event"], x.name.as_str(), "{context}: {path}");
                assert_eq!(e["start_time"], format_micros(x.start).as_str());
                assert_eq!(
                    time_of(&e["finish_time"]),
                    x.finish.as_ref().map(|f| format_micros(f.0))
                );
                assert_eq!(
                    e["result"].as_str(),
                    x.finish.as_ref().map(|f| f.1.as_str())
                );
            }
        }
    }
}

fn list_all(addr: SocketAddr, sid: &str, context: &str) -> Vec<Value> {
    let path = format!("/v2.1/servers/{sid}/os-instance-actions?limit=1000000");
    let (status, body) = http(addr, "GET", &path, "").expect("list");
    assert_eq!(status, 200, "{context}: {path}");
    json(&body)["instanceActions"].as_array().unwrap().clone()
}

/// Compares two sequences, reporting the lengths and the first difference rather than both.
fn assert_same<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T], what: &str) {
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!(
            "{what}: {} items, expected {}; first difference at {i}: got {:?}, expected {:?}",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}

#[test]
fn acknowledged_writes_survive_repeated_kill_9() {
    let seed = env_u64("NOVA_ACTIONS_CRASH_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let cycles = env_u64("NOVA_ACTIONS_CRASH_CYCLES").unwrap_or(20);
    eprintln!(
        "crash test: seed {seed}, {cycles} cycles (replay with NOVA_ACTIONS_CRASH_SEED={seed})"
    );
    let ctx = |cycle: u64, what: &str| format!("seed {seed}, cycle {cycle}: {what}");
    let mut rng = Rng::new(seed);
    let root =
        StoreDir(std::env::temp_dir().join(format!("nova-actions-crash-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(&root.0).unwrap();
    let store = root.0.join("store");
    let log = root.0.join("stderr.log");
    let mut expected = Expected {
        hosts: vec![String::new(); SERVERS],
        ..Expected::default()
    };
    let mut pending: Vec<Pending> = Vec::new();
    let mut startup = Duration::from_millis(50);
    let mut startup_kills = 0;
    let started = Instant::now();
    for cycle in 0..cycles {
        // Kill it while it is opening the store, now and then, and more than once.
        if cycle > 0 && rng.chance(3) {
            for _ in 0..1 + rng.below(3) {
                let p = Process::spawn(&store, &log);
                let wait = rng.below(startup.as_micros() as u64 + 1);
                std::thread::sleep(Duration::from_micros(wait));
                p.kill9();
                startup_kills += 1;
            }
        }
        let spawned = Instant::now();
        let mut p = Process::spawn(&store, &log);
        match p.ready() {
            Ok(_) => startup = spawned.elapsed(),
            Err(said) => panic!(
                "{}",
                ctx(
                    cycle,
                    &format!(
                        "the store at {} did not reopen after a kill -9: {said}",
                        store.display()
                    )
                )
            ),
        }
        if cycle == 0 {
            for n in 0..SERVERS {
                let body = r#"{"project_id": "p", "host": "h-initial"}"#.to_string();
                let (status, _) = post(p.addr, "PUT", &format!("servers/{}", server_uuid(n)), body)
                    .expect("initial upsert");
                assert_eq!(status, 200);
                expected.hosts[n] = "h-initial".into();
            }
        } else {
            verify(
                p.addr,
                &mut expected,
                &mut pending,
                cycle - 1,
                &ctx(cycle, "after restart"),
            );
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let addr = p.addr;
                std::thread::spawn(move || writer(addr, w, cycle, seed))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(30 + rng.below(400)));
        p.kill9();
        for (w, handle) in writers.into_iter().enumerate() {
            let out = handle.join().expect("writer thread");
            let base = expected.actions.len();
            expected.actions.extend(out.actions);
            expected.acknowledged += out.acknowledged;
            if w < SERVERS {
                if let Some(h) = out.host {
                    expected.hosts[w] = h;
                }
            }
            pending.extend(out.pending.map(|p| match p {
                Pending::StartAction { action } => Pending::StartAction {
                    action: action + base,
                },
                Pending::StartEvent { action, event } => Pending::StartEvent {
                    action: action + base,
                    event,
                },
                Pending::FinishEvent {
                    action,
                    name,
                    at,
                    result,
                } => Pending::FinishEvent {
                    action: action + base,
                    name,
                    at,
                    result,
                },
                other => other,
            }));
        }
        assert!(
            !FAILED.load(Ordering::SeqCst),
            "{}",
            ctx(cycle, "a write got an unexpected answer (see stderr)")
        );
    }
    let mut p = Process::spawn(&store, &log);
    if let Err(said) = p.ready() {
        panic!(
            "{}",
            ctx(cycles, &format!("the store did not reopen: {said}"))
        );
    }
    verify(
        p.addr,
        &mut expected,
        &mut pending,
        0,
        &ctx(cycles, "final"),
    );
    let repaired = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .matches("half-written sled snapshot")
        .count();
    eprintln!(
        "crash test: seed {seed}: {cycles} kills under load and {startup_kills} during start-up \
         survived ({repaired} half-written snapshots removed at start); {} acknowledged writes \
         ({} actions) verified in {:.1} s",
        expected.acknowledged,
        expected.actions.len(),
        started.elapsed().as_secs_f64()
    );
    drop(p);
}

// ----- concurrency over HTTP -----

/// Runs `work` on a thread and fails the test if it takes longer than `limit`.
pub(crate) fn bounded<T: Send + 'static>(
    limit: Duration,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?} (deadlock?)"))
}

pub(crate) fn must(addr: SocketAddr, method: &str, path: &str, body: &str, want: u16) -> Value {
    let (status, reply) = http(addr, method, path, body).expect(path);
    assert_eq!(
        status,
        want,
        "{method} {path} {body}: {}",
        String::from_utf8_lossy(&reply)
    );
    if reply.is_empty() {
        Value::Null
    } else {
        json(&reply)
    }
}

#[test]
fn concurrent_finishes_of_one_action_lose_no_update() {
    let server = TestServer::start();
    let addr = server.addr;
    let sid = "c1000000-0000-4000-8000-000000000001";
    must(
        addr,
        "PUT",
        &format!("/ingest/v1/servers/{sid}"),
        r#"{"project_id": "p"}"#,
        200,
    );
    const CLIENTS: usize = 24;
    for round in 0..4 {
        let rid = format!("req-round-{round}");
        let t0 = EPOCH + round * 1_000_000_000;
        must(
            addr,
            "POST",
            &format!("/ingest/v1/servers/{sid}/actions"),
            &format!(
                r#"{{"request_id": "{rid}", "action": "migrate", "start_time": "{}"}}"#,
                format_micros(t0)
            ),
            201,
        );
        for e in 0..CLIENTS {
            must(
                addr,
                "POST",
                &format!("/ingest/v1/servers/{sid}/actions/{rid}/events"),
                &format!(
                    r#"{{"event": "ev{e}", "host": "h", "start_time": "{}"}}"#,
                    format_micros(t0 + 1 + e as i64)
                ),
                201,
            );
        }
        // Exactly one client reports an error; it must not be lost among the others.
        let failing = (round as usize * 7) % CLIENTS;
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let finish_time = move |e: usize| t0 + 1_000_000 + (e as i64) * 1000;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|e| {
                let barrier = Arc::clone(&barrier);
                let (rid, sid) = (rid.clone(), sid.to_string());
                std::thread::spawn(move || {
                    let result = if e == failing { "Error" } else { "Success" };
                    let path =
                        format!("/ingest/v1/servers/{sid}/actions/{rid}/events/ev{e}/finish");
                    let body = format!(
                        r#"{{"result": "{result}", "finish_time": "{}"}}"#,
                        format_micros(finish_time(e))
                    );
                    barrier.wait();
                    // The second is a client retry: it must change nothing.
                    let first = http(addr, "POST", &path, &body).map(|r| r.0);
                    let retry = http(addr, "POST", &path, &body).map(|r| r.0);
                    (first.ok(), retry.ok())
                })
            })
            .collect();
        let statuses: Vec<_> = bounded(Duration::from_secs(60), "concurrent finishes", move || {
            clients.into_iter().map(|c| c.join().unwrap()).collect()
        });
        assert!(
            statuses.iter().all(|s| *s == (Some(200), Some(200))),
            "{statuses:?}"
        );
        let shown = must(
            addr,
            "GET",
            &format!("/v2.1/servers/{sid}/os-instance-actions/{rid}"),
            "",
            200,
        );
        let action = &shown["instanceAction"];
        assert_eq!(
            action["message"], "Error",
            "round {round}: the error was lost"
        );
        let finishes: HashSet<String> = (0..CLIENTS)
            .map(|e| format_micros(finish_time(e)))
            .collect();
        let updated = action["updated_at"].as_str().unwrap();
        assert!(
            finishes.contains(updated),
            "round {round}: updated_at {updated} is no finish time"
        );
        let events = action["events"].as_array().unwrap();
        assert_eq!(
            events.len(),
            CLIENTS,
            "round {round}: an event was added or lost"
        );
        for ev in events {
            let e: usize = ev["event"].as_str().unwrap()[2..].parse().unwrap();
            assert_eq!(
                ev["finish_time"],
                format_micros(finish_time(e)).as_str(),
                "round {round}: ev{e}"
            );
            assert_eq!(ev["result"], if e == failing { "Error" } else { "Success" });
        }
    }
}

#[test]
fn a_purge_racing_readers_is_all_or_nothing() {
    let server = TestServer::start();
    let addr = server.addr;
    const ACTIONS: usize = 300;
    const EVENTS: usize = 2;
    for round in 0..env_u64("NOVA_ACTIONS_PURGE_ROUNDS").unwrap_or(100) {
        let sid = format!("c2000000-0000-4000-8000-{round:012}");
        let round = round % 8;
        let mut line = format!(r#"{{"uuid":"{sid}","project_id":"p","actions":["#);
        for a in 0..ACTIONS {
            let t = EPOCH + (a as i64) * 1_000_000;
            if a > 0 {
                line.push(',');
            }
            line.push_str(&format!(
                r#"{{"request_id":"req-{a}","action":"stop","start_time":"{}","events":["#,
                format_micros(t)
            ));
            for e in 0..EVENTS {
                if e > 0 {
                    line.push(',');
                }
                line.push_str(&format!(
                    r#"{{"event":"ev{e}","start_time":"{}","finish_time":"{}","result":"Success"}}"#,
                    format_micros(t + 1),
                    format_micros(t + 2)
                ));
            }
            line.push_str("]}");
        }
        line.push_str("]}\n");
        must(addr, "POST", "/ingest/v1/import", &line, 200);
        let purged = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|r| {
                let (sid, purged) = (sid.clone(), Arc::clone(&purged));
                std::thread::spawn(move || {
                    let mut problems = Vec::new();
                    let mut after = 0;
                    let mut i = 0usize;
                    while after < 3 {
                        if purged.load(Ordering::SeqCst) {
                            after += 1;
                        }
                        i += 1;
                        let path = if (i + r) % 2 == 0 {
                            format!("/v2.1/servers/{sid}/os-instance-actions")
                        } else {
                            format!(
                                "/v2.1/servers/{sid}/os-instance-actions/req-{}",
                                (i * 7 + r) % ACTIONS
                            )
                        };
                        let (status, body) = match http(addr, "GET", &path, "") {
                            Ok(r) => r,
                            Err(e) => {
                                problems.push(format!("{path}: {e}"));
                                continue;
                            }
                        };
                        match status {
                            404 => {}
                            200 => {
                                let v = json(&body);
                                if let Some(list) = v["instanceActions"].as_array() {
                                    if list.len() != ACTIONS {
                                        problems.push(format!(
                                            "{path}: a list of {} actions",
                                            list.len()
                                        ));
                                    }
                                } else {
                                    let n = v["instanceAction"]["events"]
                                        .as_array()
                                        .map_or(0, Vec::len);
                                    if n != EVENTS {
                                        problems.push(format!("{path}: an action with {n} events"));
                                    }
                                }
                            }
                            other => problems.push(format!(
                                "{path}: {other} {}",
                                String::from_utf8_lossy(&body)
                            )),
                        }
                    }
                    problems
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20 + round * 10));
        must(
            addr,
            "POST",
            &format!("/ingest/v1/servers/{sid}/purge"),
            "",
            200,
        );
        purged.store(true, Ordering::SeqCst);
        let problems: Vec<String> = bounded(Duration::from_secs(60), "readers", move || {
            readers
                .into_iter()
                .flat_map(|r| r.join().unwrap())
                .collect()
        });
        assert!(problems.is_empty(), "round {round}: {problems:#?}");
        must(
            addr,
            "GET",
            &format!("/v2.1/servers/{sid}/os-instance-actions"),
            "",
            404,
        );
    }
}

#[test]
fn an_http_import_racing_writes_to_other_servers_completes() {
    let server = TestServer::start();
    let addr = server.addr;
    const IMPORTED: usize = 30;
    let ndjson = crate::abuse::histories("c3000000", IMPORTED, 20);
    let import = {
        let ndjson = ndjson.clone();
        std::thread::spawn(move || http(addr, "POST", "/ingest/v1/import", &ndjson))
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            std::thread::spawn(move || {
                let sid = format!("c4000000-0000-4000-8000-{w:012}");
                must(
                    addr,
                    "PUT",
                    &format!("/ingest/v1/servers/{sid}"),
                    r#"{"project_id": "p"}"#,
                    200,
                );
                for i in 0..15 {
                    let rid = format!("req-{i}");
                    let t = EPOCH + i * 1_000_000;
                    must(
                        addr,
                        "POST",
                        &format!("/ingest/v1/servers/{sid}/actions"),
                        &format!(
                            r#"{{"request_id": "{rid}", "action": "stop", "start_time": "{}"}}"#,
                            format_micros(t)
                        ),
                        201,
                    );
                    must(
                        addr,
                        "POST",
                        &format!("/ingest/v1/servers/{sid}/actions/{rid}/events"),
                        &format!(
                            r#"{{"event": "ev", "start_time": "{}"}}"#,
                            format_micros(t + 1)
                        ),
                        201,
                    );
                    must(
                        addr,
                        "POST",
                        &format!("/ingest/v1/servers/{sid}/actions/{rid}/events/ev/finish"),
                        &format!(
                            r#"{{"result": "Success", "finish_time": "{}"}}"#,
                            format_micros(t + 2)
                        ),
                        200,
                    );
                }
            })
        })
        .collect();
    bounded(Duration::from_secs(120), "the writers", move || {
        for w in writers {
            w.join().expect("writer");
        }
    });
    let (status, body) = bounded(Duration::from_secs(120), "the import", move || {
        import.join().unwrap().expect("import answered")
    });
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let counts = json(&body)["imported"].clone();
    assert_eq!(counts["servers"], IMPORTED);
    assert_eq!(counts["actions"], IMPORTED * 20);
    for s in 0..IMPORTED {
        let list = must(
            addr,
            "GET",
            &format!("/v2.1/servers/c3000000-0000-4000-8000-{s:012}/os-instance-actions"),
            "",
            200,
        );
        assert_eq!(list["instanceActions"].as_array().unwrap().len(), 20);
    }
    for w in 0..4 {
        let sid = format!("c4000000-0000-4000-8000-{w:012}");
        let list = must(
            addr,
            "GET",
            &format!("/v2.1/servers/{sid}/os-instance-actions"),
            "",
            200,
        );
        let list = list["instanceActions"].as_array().unwrap();
        assert_eq!(list.len(), 15);
        for a in list {
            let start = a["start_time"].as_str().unwrap();
            assert_eq!(
                a["updated_at"].as_str().unwrap()[..19],
                start[..19],
                "finished within its second"
            );
        }
    }
}
