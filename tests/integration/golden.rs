//! Replays every exchange recorded from a real Nova 34.0.0 (tests/fixtures/golden/cases) against
//! this service loaded with the same fixture, compared as the recording's README says: status,
//! exact body bytes, Content-Type and version headers exact, Vary as a set, request ids well
//! formed and equal.

use serde_json::Value;

use crate::common::{Response, fixture_server, fixtures_dir};

struct Case {
    name: String,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    status: u16,
    expected_headers: Vec<(String, String)>,
    body_raw: String,
}

fn load_cases() -> Vec<Case> {
    let dir = fixtures_dir().join("golden/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            let req = &v["request"];
            let resp = &v["response"];
            Case {
                name: path.file_stem().unwrap().to_string_lossy().into_owned(),
                method: req["method"].as_str().unwrap().to_string(),
                path: req["path"].as_str().unwrap().to_string(),
                headers: req["headers"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect(),
                status: resp["status"].as_u64().unwrap() as u16,
                expected_headers: resp["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| {
                        (
                            h[0].as_str().unwrap().to_string(),
                            h[1].as_str().unwrap().to_string(),
                        )
                    })
                    .collect(),
                body_raw: resp["body_raw"].as_str().unwrap_or("").to_string(),
            }
        })
        .collect()
}

fn expected<'a>(case: &'a Case, name: &str) -> Vec<&'a str> {
    case.expected_headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

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
        let (want, have) = (expected(case, name), got.all(name));
        if want != have {
            diffs.push(format!("{name} {have:?} (Nova {want:?})"));
        }
    }
    let mut want_vary = expected(case, "Vary");
    let mut have_vary = got.all("Vary");
    want_vary.sort_unstable();
    have_vary.sort_unstable();
    if want_vary != have_vary {
        diffs.push(format!("Vary {have_vary:?} (Nova {want_vary:?})"));
    }
    let nova_has_ids = !expected(case, "x-openstack-request-id").is_empty();
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
    let cases = load_cases();
    assert!(
        cases.len() >= 100,
        "expected the recorded cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let headers: Vec<(&str, &str)> = case
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let got = server.send(&case.method, &case.path, &headers, b"");
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
