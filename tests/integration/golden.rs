//! Replays every exchange recorded from a real Nova 34.0.0 (tests/fixtures/golden/cases) against
//! this service loaded with the same fixture, compared as the recording's README says: status,
//! exact body bytes, Content-Type and version headers exact, Vary as a set, request ids well
//! formed and equal.

use crate::common::{Response, fixture_server};
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

#[test]
fn every_recorded_nova_exchange_replays_identically() {
    let server = fixture_server();
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
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Nova:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
