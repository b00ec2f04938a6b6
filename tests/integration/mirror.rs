//! `nova-actions sync` against a real Nova 34.0.0 (`scripts/nova-oracle`, installed and pointed
//! at by `.ci/run`): the mirror answers every action list and show exactly as that Nova does,
//! follows new history recorded by Nova's own code, and keeps what Nova no longer has.
//!
//! Needs `NOVA_ACTIONS_TEST_NOVA=1` and the oracle's venv (`scripts/nova-oracle/setup.sh`);
//! without them the test says it is skipped.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::backend::{StoreArg, say};
use crate::cli::{Served, binary, serve, serve_with};
use crate::common::{ADMIN, TempDir, fixtures_dir, send_raw};

/// A real Nova on a free port with a fresh state dir; stopped on drop.
struct Nova {
    port: u16,
    state: PathBuf,
    _dir: TempDir,
}

fn oracle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/nova-oracle")
}

impl Nova {
    fn start() -> Nova {
        let dir = TempDir::new();
        let state = dir.0.join("nova");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let run = Command::new(oracle().join("run.sh"))
            .args([&port.to_string(), state.to_str().unwrap(), "--fresh"])
            .args(["--workers", "2", "--threads", "4"])
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        Nova {
            port,
            state,
            _dir: dir,
        }
    }

    /// A real Nova holding the servers-golden fixture (the history both tests start from).
    fn with_fixture() -> Nova {
        let nova = Nova::start();
        let fixture = fixtures_dir().join("servers-golden/oracle-fixture.json");
        nova.seed(&["load", fixture.to_str().unwrap()], "");
        nova
    }

    /// Runs `seed.py` with these arguments (and `stdin` for `batch -`).
    fn seed(&self, args: &[&str], stdin: &str) {
        use std::io::Write;
        let mut child = Command::new(oracle().join("seed.py"))
            .arg("--state-dir")
            .arg(&self.state)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "seed.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Nova {
    fn drop(&mut self) {
        let _ = Command::new(oracle().join("stop.sh"))
            .arg(&self.state)
            .output();
    }
}

/// One pass that also reads every live server's actions (a sweep).
fn sync_once(nova: &Nova, store: &Path) {
    sync_pass(nova, store, "0s");
}

fn sync_pass(nova: &Nova, store: &Path, sweep_interval: &str) {
    let out = binary()
        .args(["sync", "--once"])
        .store(store)
        .env("NOVA_ACTIONS__SYNC__SWEEP_INTERVAL", sweep_interval)
        .env(
            "NOVA_ACTIONS__SYNC__ENDPOINT",
            format!("http://127.0.0.1:{}/v2.1", nova.port),
        )
        .env("NOVA_ACTIONS__SYNC__TOKEN", ADMIN)
        // No overlap: each pass reads from exactly where the last began, so what the mirror
        // finds it finds by its rules, not because a window read it again.
        .env("NOVA_ACTIONS__SYNC__OVERLAP", "0s")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds an action the mirror should now answer for to the expected servers.
fn expect_action(servers: &mut [(String, Vec<String>)], server: &str, request_id: &str) {
    let (_, actions) = servers.iter_mut().find(|(id, _)| id == server).unwrap();
    actions.push(request_id.to_string());
}

/// Every list and show of these servers' actions, at the versions where the answer changes,
/// as an admin, the owner and another project.
fn requests(servers: &[(String, Vec<String>)]) -> Vec<(String, &'static str, &'static str)> {
    let mut out = Vec::new();
    for (id, request_ids) in servers {
        for token in [ADMIN, "user-a:proj-a", "user-b:proj-b"] {
            for version in ["2.1", "2.21", "2.51", "2.58", "2.62", "2.84", "2.100"] {
                out.push((
                    format!("/v2.1/servers/{id}/os-instance-actions"),
                    token,
                    version,
                ));
                for rid in request_ids {
                    out.push((
                        format!("/v2.1/servers/{id}/os-instance-actions/{rid}"),
                        token,
                        version,
                    ));
                }
            }
            out.push((
                format!("/v2.1/servers/{id}/os-instance-actions?limit=1"),
                token,
                "2.58",
            ));
        }
    }
    out
}

fn answer(addr: SocketAddr, path: &str, token: &str, version: &str) -> (u16, Vec<u8>) {
    let v = format!("compute {version}");
    let headers = [
        ("Host", "127.0.0.1:28774"),
        ("X-Auth-Token", token),
        ("OpenStack-API-Version", v.as_str()),
        ("Accept", "application/json"),
    ];
    let r = send_raw(addr, "GET", path.as_bytes(), &headers, b"");
    (r.status, r.body)
}

/// The requests whose answers differ between Nova and the mirror (asked from a few threads:
/// Nova takes tens of milliseconds per answer).
fn differences(
    nova: SocketAddr,
    mirror: SocketAddr,
    asked: &[(String, &str, &str)],
) -> Vec<String> {
    let chunk = asked.len().div_ceil(6).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = asked
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|(path, token, version)| {
                            let a = answer(nova, path, token, version);
                            let b = answer(mirror, path, token, version);
                            (a != b).then(|| {
                                format!(
                                    "{token} {version} {path}\n  nova:   {} {}\n  mirror: {} {}",
                                    a.0,
                                    String::from_utf8_lossy(&a.1),
                                    b.0,
                                    String::from_utf8_lossy(&b.1)
                                )
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
}

/// Fails with the first few differences when any answer differs from Nova's.
fn assert_answers_as_nova(nova: &Nova, mirror: SocketAddr, asked: &[(String, &str, &str)]) {
    let diffs = differences(nova.addr(), mirror, asked);
    assert!(
        diffs.is_empty(),
        "{} of {} differ:\n{}",
        diffs.len(),
        asked.len(),
        diffs[..diffs.len().min(5)].join("\n")
    );
}

/// Whether a real Nova is at hand; says so when the test is skipped.
fn have_nova(test: &str) -> bool {
    let have = std::env::var("NOVA_ACTIONS_TEST_NOVA").is_ok();
    if !have {
        say(&format!(
            "SKIPPED {test}: no real Nova (run scripts/nova-oracle/setup.sh and set \
             NOVA_ACTIONS_TEST_NOVA=1, as .ci/run does)"
        ));
    }
    have
}

fn fixture_servers() -> Vec<(String, Vec<String>)> {
    let text =
        std::fs::read_to_string(fixtures_dir().join("servers-golden/fixture.ndjson")).unwrap();
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let rids = v["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["request_id"].as_str().unwrap().to_string())
                .collect();
            (v["uuid"].as_str().unwrap().to_string(), rids)
        })
        .collect()
}

fn mirror_of(store: &Path) -> Served {
    serve(store)
}

#[test]
fn the_mirror_answers_as_nova_follows_it_and_keeps_what_nova_drops() {
    if !have_nova("the_mirror_answers_as_nova_follows_it_and_keeps_what_nova_drops") {
        return;
    }
    let nova = Nova::with_fixture();
    let dir = TempDir::new();
    let store = dir.0.join("mirror");

    // 1. A first pass copies everything: every answer is Nova's, byte for byte.
    sync_once(&nova, &store);
    let mut servers = fixture_servers();
    let asked = requests(&servers);
    let mirror = mirror_of(&store);
    assert_answers_as_nova(&nova, mirror.addr, &asked);
    drop(mirror);

    // 2. History Nova's own code records afterwards (an action on a server Nova does not
    //    touch, an event finishing with an error, a deletion) comes with the next pass: the
    //    deletion with any pass, the untouched server's action only with a sweep.
    let a2 = "a0000000-0000-4000-8000-000000000002";
    let a3 = "a0000000-0000-4000-8000-000000000003";
    nova.seed(
        &["batch", "-"],
        &format!(
            "act start --instance {a2} --request-id req-live-1 --action reboot\n\
             act event-start --instance {a2} --request-id req-live-1 --event compute_reboot_instance --host compute-1\n\
             act event-finish --instance {a2} --request-id req-live-1 --event compute_reboot_instance --result Error --traceback \"Trace <&> ü\"\n\
             act start --instance {a3} --request-id req-live-2 --action delete\n\
             instance delete --instance {a3}\n"
        ),
    );
    sync_pass(&nova, &store, "1h");
    let mirror = mirror_of(&store);
    let shown = |served: &Served, server: &str, rid: &str| {
        let path = format!("/v2.1/servers/{server}/os-instance-actions/{rid}");
        answer(served.addr, &path, ADMIN, "2.84").0
    };
    assert_eq!(
        shown(&mirror, a3, "req-live-2"),
        200,
        "a changed server waits"
    );
    assert_eq!(
        shown(&mirror, a2, "req-live-1"),
        404,
        "an unchanged server was read although no sweep was due"
    );
    drop(mirror);
    sync_once(&nova, &store);
    expect_action(&mut servers, a2, "req-live-1");
    expect_action(&mut servers, a3, "req-live-2");
    let asked = requests(&servers);
    let mirror = mirror_of(&store);
    assert_answers_as_nova(&nova, mirror.addr, &asked);
    drop(mirror);

    // 3. An event Nova finishes without its request id (a compute service restarted mid-way)
    //    does not move the action's `updated_at`: the mirror re-reads actions it last saw
    //    unfinished until they are finished.
    nova.seed(
        &["batch", "-"],
        &format!(
            "act start --instance {a2} --request-id req-live-3 --action stop\n\
             act event-start --instance {a2} --request-id req-live-3 --event compute_stop_instance --host compute-1\n"
        ),
    );
    sync_once(&nova, &store);
    nova.seed(
        &[
            "act",
            "event-finish",
            "--instance",
            a2,
            "--event",
            "compute_stop_instance",
            "--result",
            "Success",
        ],
        "",
    );
    sync_once(&nova, &store);
    expect_action(&mut servers, a2, "req-live-3");
    let asked = requests(&servers);
    let mirror = mirror_of(&store);
    assert_answers_as_nova(&nova, mirror.addr, &asked);
    let finished = answer(
        mirror.addr,
        &format!("/v2.1/servers/{a2}/os-instance-actions/req-live-3"),
        ADMIN,
        "2.84",
    );
    assert!(
        String::from_utf8_lossy(&finished.1).contains("\"result\": \"Success\""),
        "{}",
        String::from_utf8_lossy(&finished.1)
    );
    let before: Vec<(u16, Vec<u8>)> = asked
        .iter()
        .map(|(p, t, v)| answer(mirror.addr, p, t, v))
        .collect();
    let export = |served: &Served| {
        send_raw(
            served.addr,
            "GET",
            b"/ingest/v1/export",
            &[("X-Auth-Token", ADMIN)],
            b"",
        )
        .body
    };
    let exported = export(&mirror);
    drop(mirror);

    // 4. Another pass with nothing new changes nothing.
    sync_once(&nova, &store);
    let mirror = mirror_of(&store);
    assert!(
        export(&mirror) == exported,
        "a pass with nothing new changed the store"
    );
    drop(mirror);

    // 5. Nova forgets everything (archive and purge of every row): the mirror keeps it all and
    //    answers as Nova did.
    nova.seed(&["reset"], "");
    sync_once(&nova, &store);
    let mirror = mirror_of(&store);
    let after: Vec<(u16, Vec<u8>)> = asked
        .iter()
        .map(|(p, t, v)| answer(mirror.addr, p, t, v))
        .collect();
    assert!(after == before, "the mirror lost history Nova dropped");
    let gone = answer(
        nova.addr(),
        &format!("/v2.1/servers/{a2}/os-instance-actions"),
        ADMIN,
        "2.84",
    );
    assert_eq!(gone.0, 404, "Nova forgot the server");
}

/// `[sync] enabled` inside `serve`, with the default sweep interval: history Nova records
/// while the service runs (through its API, which saves the server first) is answered within
/// two poll intervals; a mirror killed with -9 mid-pass converges on its next start,
/// nothing lost or doubled.
#[test]
fn a_running_mirror_follows_nova_within_two_intervals_and_survives_kill_9() {
    if !have_nova("a_running_mirror_follows_nova_within_two_intervals_and_survives_kill_9") {
        return;
    }
    let nova = Nova::with_fixture();
    let dir = TempDir::new();
    let store = dir.0.join("mirror");
    let endpoint = format!("http://127.0.0.1:{}/v2.1", nova.port);
    let mirroring = |command: &mut Command| {
        command
            .env("NOVA_ACTIONS__SYNC__ENABLED", "true")
            .env("NOVA_ACTIONS__SYNC__ENDPOINT", &endpoint)
            .env("NOVA_ACTIONS__SYNC__TOKEN", ADMIN)
            .env("NOVA_ACTIONS__SYNC__INTERVAL", "1s")
            .env("NOVA_ACTIONS__SYNC__OVERLAP", "0s");
    };
    let a1 = "a0000000-0000-4000-8000-000000000001";
    let list = format!("/v2.1/servers/{a1}/os-instance-actions");
    let show = |rid: &str| format!("/v2.1/servers/{a1}/os-instance-actions/{rid}");
    let within = |served: &Served, path: &str, seconds: u64| -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        loop {
            let (status, _) = answer(served.addr, path, ADMIN, "2.84");
            if status == 200 {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let served = serve_with(&store, mirroring);
    assert!(within(&served, &list, 30), "the first pass never landed");
    // New history while the mirror runs: answered within two intervals of being recorded plus
    // the time a pass takes (generous here: the suite's other tests share the two cores).
    nova.seed(
        &[
            "act",
            "start",
            "--instance",
            a1,
            "--request-id",
            "req-run-1",
            "--action",
            "pause",
            "--task-state",
            "pausing",
        ],
        "",
    );
    let recorded = std::time::Instant::now();
    assert!(
        within(&served, &show("req-run-1"), 2 + 8),
        "not mirrored within two intervals"
    );
    say(&format!(
        "mirror: a new action answered {:.1} s after Nova recorded it (interval 1 s)",
        recorded.elapsed().as_secs_f64()
    ));
    // Killed mid-pass, repeatedly, while Nova keeps recording.
    let mut served = served;
    for round in 0..3 {
        let rid = format!("req-kill-{round}");
        nova.seed(
            &[
                "act",
                "start",
                "--instance",
                a1,
                "--request-id",
                &rid,
                "--action",
                "reboot",
                // A new task state each round: saving the same one would change nothing.
                "--task-state",
                ["rebooting", "powering-off", "powering-on"][round as usize],
            ],
            "",
        );
        std::thread::sleep(std::time::Duration::from_millis(300 + 250 * round));
        let _ = served.child.kill();
        let _ = served.child.wait();
        served = serve_with(&store, mirroring);
        assert!(
            within(&served, &show(&rid), 30),
            "{rid} never mirrored after kill -9"
        );
    }
    // Converged: every list and show as Nova answers it, nothing doubled.
    let mut servers = fixture_servers();
    let extra = ["req-run-1", "req-kill-0", "req-kill-1", "req-kill-2"];
    servers
        .iter_mut()
        .find(|(id, _)| id == a1)
        .unwrap()
        .1
        .extend(extra.iter().map(ToString::to_string));
    let asked = requests(&servers);
    // One more pass after the last recording, so the copy is current.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_answers_as_nova(&nova, served.addr, &asked);
}
