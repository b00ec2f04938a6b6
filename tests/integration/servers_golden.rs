//! Replays the server lookup exchanges recorded from a real Nova 34.0.0
//! (tests/fixtures/servers-golden/cases) against this service loaded with the same data.
//!
//! Nova's server document has many fields this service does not store (image, flavor,
//! addresses, OS-EXT-STS:*, ...), so bodies are compared as the fixture README says:
//! - status, Content-Type and the version headers exactly, Vary as a set; request ids well
//!   formed;
//! - faults (non-2xx) byte for byte;
//! - 2xx: the same top-level keys; the same servers in the same order; `servers_links`
//!   exactly; in each server, every key this service writes is one of Nova's, in Nova's
//!   relative order, with Nova's value.
//!
//! A few recorded cases need data or features this service does not have; they are listed in
//! `NOT_ANSWERED` with the reason, and the README says so.

use serde_json::Value;

use crate::common::{Response, TestServer, fixtures_dir};
use crate::recorded::{self, Case};

/// Cases Nova answers from data we don't store, or with features we don't offer.
const NOT_ANSWERED: &[(&str, &str)] = &[
    (
        "110-",
        "sort_key/sort_dir are not honoured: listings keep Nova's default order",
    ),
    (
        "111-",
        "sort_key is not validated (and Nova's message is not stable)",
    ),
    (
        "118-",
        "ip filters need the network data this service does not store",
    ),
    (
        "119-",
        "flavor filters need flavors, which this service does not store",
    ),
    (
        "120-",
        "image filters need images, which this service does not store",
    ),
];

/// Our server object against Nova's: our keys a subset of Nova's, in the same relative order,
/// with equal values.
fn server_differences(ours: &Value, nova: &Value, at: &str, diffs: &mut Vec<String>) {
    let (Some(ours), Some(nova)) = (ours.as_object(), nova.as_object()) else {
        diffs.push(format!("{at}: not objects"));
        return;
    };
    let nova_keys: Vec<&String> = nova.keys().collect();
    let mut last = None;
    for (key, value) in ours {
        match nova_keys.iter().position(|k| *k == key) {
            None => diffs.push(format!("{at}: key {key} is not Nova's")),
            Some(i) => {
                if last.is_some_and(|l| i < l) {
                    diffs.push(format!("{at}: key {key} out of Nova's order"));
                }
                last = Some(i);
                if &nova[key] != value {
                    diffs.push(format!("{at}.{key}: {value} (Nova {})", nova[key]));
                }
            }
        }
    }
}

fn body_differences(case: &Case, got: &Response, diffs: &mut Vec<String>) {
    if !(200..300).contains(&case.status) {
        if got.body != case.body_raw.as_bytes() {
            diffs.push(format!("body {} (Nova {})", got.text(), case.body_raw));
        }
        return;
    }
    let nova: Value = serde_json::from_str(&case.body_raw).unwrap();
    let Ok(ours) = serde_json::from_slice::<Value>(&got.body) else {
        diffs.push(format!("body is not JSON: {}", got.text()));
        return;
    };
    let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
    if keys(&ours) != keys(&nova) {
        diffs.push(format!(
            "top-level keys {:?} (Nova {:?})",
            keys(&ours),
            keys(&nova)
        ));
        return;
    }
    if let Some(server) = nova.get("server") {
        server_differences(&ours["server"], server, "server", diffs);
        return;
    }
    let ids = |v: &Value| -> Vec<Value> {
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].clone())
            .collect()
    };
    if ids(&ours) != ids(&nova) {
        diffs.push(format!("servers {:?} (Nova {:?})", ids(&ours), ids(&nova)));
        return;
    }
    for (i, (o, n)) in ours["servers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(nova["servers"].as_array().unwrap())
        .enumerate()
    {
        server_differences(o, n, &format!("servers[{i}]"), diffs);
    }
    if ours.get("servers_links") != nova.get("servers_links") {
        diffs.push(format!(
            "servers_links {:?} (Nova {:?})",
            ours.get("servers_links"),
            nova.get("servers_links")
        ));
    }
}

fn differences(case: &Case, got: &Response) -> Vec<String> {
    let mut diffs = Vec::new();
    if got.status != case.status {
        diffs.push(format!(
            "status {} (Nova {}): {}",
            got.status,
            case.status,
            got.text()
        ));
        return diffs;
    }
    body_differences(case, got, &mut diffs);
    recorded::header_differences(case, got, &mut diffs);
    diffs
}

#[test]
fn every_recorded_server_lookup_replays_as_nova_answered() {
    let server = TestServer::start();
    let fixture = std::fs::read(fixtures_dir().join("servers-golden/fixture.ndjson")).unwrap();
    let r = server.import(&fixture);
    assert_eq!(r.status, 200, "{}", r.text());
    let cases = recorded::load("servers-golden");
    assert!(cases.len() >= 100, "found {} cases", cases.len());
    let mut failures = Vec::new();
    let mut replayed = 0;
    for case in &cases {
        if NOT_ANSWERED
            .iter()
            .any(|(prefix, _)| case.name.starts_with(prefix))
        {
            continue;
        }
        let headers: Vec<(&str, &str)> = case
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let got = server.send("GET", &case.path, &headers, b"");
        let diffs = differences(case, &got);
        if !diffs.is_empty() {
            failures.push(format!("{}: {}", case.name, diffs.join("; ")));
        }
        replayed += 1;
    }
    assert_eq!(replayed + NOT_ANSWERED.len(), cases.len());
    assert!(
        failures.is_empty(),
        "{} of {replayed} cases differ from Nova:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
