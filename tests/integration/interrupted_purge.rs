//! A purge killed at any moment is all-or-nothing from outside: after a restart the server either
//! still has its whole history or reads as gone, and once the id is registered again (by another
//! project) nothing of the old history is ever visible: not in lists, not by request id, not in
//! an export. Replay with `NOVA_ACTIONS_CRASH_SEED=<seed>`; `NOVA_ACTIONS_PURGE_KILLS` sets the
//! number of kills.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nova_actions::timeutil::format_micros;
use serde_json::Value;

use crate::common::{copy_dir, get_at};
use crate::durability::{EPOCH, Process, Rng, StoreDir, env_u64, http, json, must};

const ACTIONS: usize = 20_000;
const SID: &str = "c5000000-0000-4000-8000-000000000001";
/// A neighbour in the key space on each side: a purge must not touch them.
const BEFORE: &str = "c5000000-0000-4000-8000-000000000000";
const AFTER: &str = "c5000000-0000-4000-8000-000000000002";

fn history(sid: &str, project: &str, user: &str, actions: usize) -> String {
    let mut line = format!(r#"{{"uuid":"{sid}","project_id":"{project}","actions":["#);
    for a in 0..actions {
        if a > 0 {
            line.push(',');
        }
        let t = EPOCH + (a as i64) * 1_000_000;
        line.push_str(&format!(
            r#"{{"request_id":"req-old-{a}","action":"reboot","user_id":"{user}","start_time":"{}","events":[{{"event":"compute_reboot_instance","start_time":"{}","finish_time":"{}","result":"Success"}}]}}"#,
            format_micros(t),
            format_micros(t + 1),
            format_micros(t + 2)
        ));
    }
    line.push_str("]}\n");
    line
}

fn action_count(addr: std::net::SocketAddr, sid: &str) -> Option<usize> {
    let (status, body) = http(
        addr,
        "GET",
        &format!("/v2.1/servers/{sid}/os-instance-actions"),
        "",
    )
    .unwrap();
    match status {
        404 => None,
        200 => Some(json(&body)["instanceActions"].as_array().unwrap().len()),
        other => panic!("{sid}: {other} {}", String::from_utf8_lossy(&body)),
    }
}

/// The export line of `sid`, if it is exported.
fn exported(addr: std::net::SocketAddr, sid: &str) -> Option<Value> {
    let (status, body) = http(addr, "GET", "/ingest/v1/export", "").unwrap();
    assert_eq!(status, 200);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["uuid"] == sid)
}

#[test]
fn a_purge_killed_at_any_moment_leaks_nothing_to_the_next_owner() {
    if !crate::backend::embedded_only(
        "a_purge_killed_at_any_moment_leaks_nothing_to_the_next_owner",
    ) {
        return;
    }
    let seed = env_u64("NOVA_ACTIONS_CRASH_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let kills = env_u64("NOVA_ACTIONS_PURGE_KILLS").unwrap_or(8);
    eprintln!("interrupted purges: seed {seed}, {kills} kills");
    let mut rng = Rng::new(seed);
    let root =
        StoreDir(std::env::temp_dir().join(format!("nova-actions-purge-{}", uuid::Uuid::new_v4())));
    let template = root.0.join("template");
    let log = root.0.join("stderr.log");
    std::fs::create_dir_all(&root.0).unwrap();

    // One store with the large history, copied for every kill.
    let mut p = Process::spawn(&template, &log);
    p.ready().unwrap();
    let mut ndjson = history(SID, "old", "old-user", ACTIONS);
    ndjson.push_str(&history(BEFORE, "old", "old-user", 3));
    ndjson.push_str(&history(AFTER, "old", "old-user", 3));
    must(p.addr, "POST", "/ingest/v1/import", &ndjson, 200);
    p.kill9();

    // How long an uninterrupted purge takes, so that kills land all over it.
    let calibration = root.0.join("calibration");
    copy_dir(&template, &calibration);
    let mut p = Process::spawn(&calibration, &log);
    p.ready().unwrap();
    let started = Instant::now();
    let purged = must(
        p.addr,
        "POST",
        &format!("/ingest/v1/servers/{SID}/purge"),
        "",
        200,
    );
    let purge_time = started.elapsed();
    assert_eq!(purged["purged"]["actions"], ACTIONS);
    p.kill9();
    eprintln!("an uninterrupted purge of {ACTIONS} actions took {purge_time:?}");

    let mut outcomes = (0, 0);
    for kill in 0..kills {
        let ctx = format!("seed {seed}, kill {kill}");
        let store = root.0.join(format!("kill-{kill}"));
        copy_dir(&template, &store);
        let mut p = Process::spawn(&store, &log);
        p.ready().unwrap();
        let addr = p.addr;
        let purge = std::thread::spawn(move || {
            http(addr, "POST", &format!("/ingest/v1/servers/{SID}/purge"), "")
        });
        let window = purge_time.as_micros() as u64 * 6 / 5 + 1;
        std::thread::sleep(Duration::from_micros(rng.below(window)));
        p.kill9();
        let answered = purge.join().unwrap().map(|r| r.0).ok();

        let mut p = Process::spawn(&store, &log);
        p.ready().unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let addr = p.addr;
        match action_count(addr, SID) {
            None => outcomes.0 += 1,
            Some(n) => {
                assert_eq!(n, ACTIONS, "{ctx}: a half-purged history is visible");
                assert_ne!(
                    answered,
                    Some(200),
                    "{ctx}: an acknowledged purge came back"
                );
                outcomes.1 += 1;
            }
        }
        for neighbour in [BEFORE, AFTER] {
            assert_eq!(action_count(addr, neighbour), Some(3), "{ctx}: {neighbour}");
        }

        // Another project takes the id, whether or not the purge had finished.
        must(
            addr,
            "POST",
            &format!("/ingest/v1/servers/{SID}/purge"),
            "",
            if action_count(addr, SID).is_some() {
                200
            } else {
                404
            },
        );
        must(
            addr,
            "PUT",
            &format!("/ingest/v1/servers/{SID}"),
            r#"{"project_id": "new", "user_id": "new-user"}"#,
            200,
        );
        let member = get_at(
            addr,
            &format!("/v2.1/servers/{SID}/os-instance-actions"),
            "new-user:new",
            "2.84",
        );
        assert_eq!(member.status, 200, "{ctx}: {}", member.text());
        assert_eq!(
            member.json()["instanceActions"],
            serde_json::json!([]),
            "{ctx}: the new owner sees the old history"
        );
        for a in [0, ACTIONS / 2, ACTIONS - 1] {
            let old = get_at(
                addr,
                &format!("/v2.1/servers/{SID}/os-instance-actions/req-old-{a}"),
                "admin:admin",
                "2.84",
            );
            assert_eq!(old.status, 404, "{ctx}: req-old-{a} {}", old.text());
        }
        let line = exported(addr, SID).unwrap_or_else(|| panic!("{ctx}: not exported"));
        assert_eq!(line["project_id"], "new", "{ctx}");
        assert_eq!(line["actions"], serde_json::json!([]), "{ctx}: {line}");
        let (_, metrics) = http(addr, "GET", "/metrics", "").unwrap();
        let metrics = String::from_utf8(metrics).unwrap();
        assert!(
            metrics.contains("\nnova_actions_purges_pending 0\n"),
            "{ctx}: {metrics}"
        );
        p.kill9();

        // And after one more restart, nothing of it came back.
        let mut p = Process::spawn(&store, &log);
        p.ready().unwrap();
        assert_eq!(action_count(p.addr, SID), Some(0), "{ctx}: after a restart");
        p.kill9();
        let _ = std::fs::remove_dir_all(&store);
    }
    eprintln!(
        "interrupted purges: {} read as gone after the restart, {} kept the whole history",
        outcomes.0, outcomes.1
    );
}
