//! Exchanges recorded from a real Nova (`tests/fixtures/*/cases/*.json`): what was sent and
//! what Nova answered, as the replay tests read them.

use serde_json::Value;

use crate::common::{Response, fixtures_dir};

pub struct Case {
    pub name: String,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub status: u16,
    pub expected_headers: Vec<(String, String)>,
    pub body_raw: String,
}

impl Case {
    /// Every value Nova sent for header `name`.
    pub fn expected(&self, name: &str) -> Vec<&str> {
        self.expected_headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn request_headers(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// Headers as recorded: an object (requests) or a list of pairs (responses).
fn pairs(v: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| v.as_str().unwrap().to_string();
    match v {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        Value::Array(items) => items.iter().map(|h| (text(&h[0]), text(&h[1]))).collect(),
        _ => Vec::new(),
    }
}

/// The cases under `tests/fixtures/{set}/cases`, in file name order.
pub fn load(set: &str) -> Vec<Case> {
    let dir = fixtures_dir().join(set).join("cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            let (req, resp) = (&v["request"], &v["response"]);
            Case {
                name: path.file_stem().unwrap().to_string_lossy().into_owned(),
                method: req["method"].as_str().unwrap().to_string(),
                path: req["path"].as_str().unwrap().to_string(),
                headers: pairs(&req["headers"]),
                status: resp["status"].as_u64().unwrap() as u16,
                expected_headers: pairs(&resp["headers"]),
                body_raw: resp["body_raw"].as_str().unwrap_or("").to_string(),
            }
        })
        .collect()
}

/// How this service's headers differ from Nova's: `Content-Type` and the version headers
/// exactly, `Vary` as a set, and the request ids well formed, equal and present where Nova's
/// were (their values are random).
pub fn header_differences(case: &Case, got: &Response, diffs: &mut Vec<String>) {
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
}
