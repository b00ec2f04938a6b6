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
    for name in [
        "Content-Type",
        "OpenStack-API-Version",
        "X-OpenStack-Nova-API-Version",
    ] {
        let (want, have) = (case.expected(name), got.all(name));
        if want != have {
            diffs.push(format!("{name} {have:?} (Nova {want:?})"));
        }
    }
    let mut want_vary = case.expected("Vary");
    let mut have_vary = got.all("Vary");
    want_vary.sort_unstable();
    have_vary.sort_unstable();
    if want_vary != have_vary {
        diffs.push(format!("Vary {have_vary:?} (Nova {want_vary:?})"));
    }
    let nova_has_ids = !case.expected("x-openstack-request-id").is_empty();
    let ids = (
        got.header("x-openstack-request-id"),
        got.header("x-compute-request-id"),
    );
    match (nova_has_ids, ids) {
        (true, (Some(a), Some(b))) => {
            let well_formed = a
                .strip_prefix("req-")
                .and_then(|u| uuid::Uuid::parse_str(u).ok())
                .is_some_and(|u| u.get_version_num() == 4);
            if a != b || !well_formed {
                diffs.push(format!("request ids {a} / {b}"));
            }
        }
        (true, _) => diffs.push("request ids missing".into()),
        (false, (None, None)) => {}
        (false, _) => diffs.push("request ids sent where Nova sends none".into()),
    }
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
