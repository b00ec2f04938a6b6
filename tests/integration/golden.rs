//! Replays every exchange recorded from a real Nova 34.0.0 (tests/fixtures/golden/cases) against
//! this service loaded with the same fixture, compared as the recording's README says: status,
//! exact body bytes, Content-Type and version headers exact, Vary as a set, request ids well
//! formed and equal.

use crate::common::{ADMIN, Response, TestServer, copy_dir, fixture, fixture_server, fixtures_dir};
use crate::recorded::{self, Case};

/// Every difference between the recording and this service's answer.
fn differences(case: &Case, got: &Response) -> Vec<String> {
    let mut diffs = Vec::new();
    if got.status != case.status {
        diffs.push(format!("status {} (Nova {})", got.status, case.status));
    }
    if got.body != case.body_raw.as_bytes() {
        diffs.push(format!(
            "body\n   got: {}\n  nova: {}",
            got.text(),
            case.body_raw
        ));
    }
    recorded::header_differences(case, got, &mut diffs);
    diffs
}

/// Replays every recorded case against `server`; the cases that differ, described.
fn replay(server: &TestServer) -> (usize, Vec<String>) {
    let cases = recorded::load("golden");
    assert!(
        cases.len() >= 100,
        "expected the recorded cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let got = server.send(&case.method, &case.path, &case.request_headers(), b"");
        let diffs = differences(case, &got);
        if !diffs.is_empty() {
            failures.push(format!("{}: {}", case.name, diffs.join("; ")));
        }
    }
    (cases.len(), failures)
}

#[test]
fn every_recorded_nova_exchange_replays_identically() {
    let (cases, failures) = replay(&fixture_server());
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ from Nova:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The store an earlier release wrote (tests/fixtures/layout6) is read by this build as it was
/// written: every recorded exchange, and the export byte for byte. A layout change must keep
/// this green through its migration.
#[test]
fn a_store_written_by_the_layout_6_release_replays_identically() {
    if crate::backend::postgres_url().is_some() {
        crate::backend::say("SKIPPED layout-6 store: the embedded store's own test");
        return;
    }
    let server = TestServer::with_config(|config| {
        copy_dir(
            &fixtures_dir().join("layout6/store"),
            &config.storage.data_dir,
        );
    });
    let (cases, failures) = replay(&server);
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ from Nova on the layout-6 store:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let export = server.send("GET", "/ingest/v1/export", &[("X-Auth-Token", ADMIN)], b"");
    assert_eq!(export.status, 200);
    assert_eq!(export.text(), String::from_utf8(fixture()).unwrap());
}
