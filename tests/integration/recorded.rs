//! Exchanges recorded from a real Nova (`tests/fixtures/*/cases/*.json`): what was sent and
//! what Nova answered, as the replay tests read them.

use serde_json::Value;

use crate::common::fixtures_dir;

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
