//! The OpenAPI description (`src/api/openapi.json`): well formed, covering every route the
//! service answers, and served and printed byte for byte as built in. Whether real answers
//! conform to it is checked by `scripts/openapi/check.sh` (schemathesis against the binary).

use serde_json::Value;

use crate::cli::binary;
use crate::common::{ADMIN, TestServer, send_raw};

/// Every (method, path) the dispatcher routes (`answer` in `src/api/mod.rs`, `route` there and
/// in `src/api/ingest.rs`), as OpenAPI path templates.
///
/// FUTURE DEVELOPERS: a route added to the code goes into `src/api/openapi.json` AND into this
/// list, in the same commit. This test fails when the list names a path or method the document
/// lacks, when the document describes one the list lacks, and when a listed route is not
/// routed by the service (it answers the 300 `choices` or the router's 404).
///
/// Not listed, on purpose: `/ui/` and its assets, the action-log page (`src/ui/`): a page for
/// people, not an API operation; `tests/integration/ui.rs` checks its answers.
const ROUTES: &[(&str, &str)] = &[
    // Version documents.
    ("get", "/"),
    ("get", "/v2"),
    ("get", "/v2/"),
    ("get", "/v2.1"),
    ("get", "/v2.1/"),
    // Operator endpoints (no token).
    ("get", "/healthcheck"),
    ("head", "/healthcheck"),
    ("get", "/metrics"),
    ("head", "/metrics"),
    ("get", "/openapi.json"),
    ("head", "/openapi.json"),
    // The compute API, with and without the project in the URL, and the legacy /v2/.
    ("get", "/v2.1/servers"),
    ("get", "/v2.1/servers/detail"),
    ("get", "/v2.1/servers/{server_id}"),
    ("get", "/v2.1/servers/{server_id}/os-instance-actions"),
    (
        "get",
        "/v2.1/servers/{server_id}/os-instance-actions/{request_id}",
    ),
    ("get", "/v2.1/{project_id}/servers"),
    ("get", "/v2.1/{project_id}/servers/detail"),
    ("get", "/v2.1/{project_id}/servers/{server_id}"),
    (
        "get",
        "/v2.1/{project_id}/servers/{server_id}/os-instance-actions",
    ),
    (
        "get",
        "/v2.1/{project_id}/servers/{server_id}/os-instance-actions/{request_id}",
    ),
    ("get", "/v2/servers"),
    ("get", "/v2/servers/detail"),
    ("get", "/v2/servers/{server_id}"),
    ("get", "/v2/servers/{server_id}/os-instance-actions"),
    (
        "get",
        "/v2/servers/{server_id}/os-instance-actions/{request_id}",
    ),
    ("get", "/v2/{project_id}/servers"),
    ("get", "/v2/{project_id}/servers/detail"),
    ("get", "/v2/{project_id}/servers/{server_id}"),
    (
        "get",
        "/v2/{project_id}/servers/{server_id}/os-instance-actions",
    ),
    (
        "get",
        "/v2/{project_id}/servers/{server_id}/os-instance-actions/{request_id}",
    ),
    // The write API.
    ("put", "/ingest/v1/servers/{server_id}"),
    ("delete", "/ingest/v1/servers/{server_id}"),
    ("post", "/ingest/v1/servers/{server_id}/purge"),
    ("post", "/ingest/v1/servers/{server_id}/actions"),
    (
        "post",
        "/ingest/v1/servers/{server_id}/actions/{request_id}/finish",
    ),
    (
        "post",
        "/ingest/v1/servers/{server_id}/actions/{request_id}/events",
    ),
    (
        "post",
        "/ingest/v1/servers/{server_id}/actions/{request_id}/events/{event}/finish",
    ),
    ("post", "/ingest/v1/import"),
    ("get", "/ingest/v1/export"),
    // The testing API (routed only when [testing] turns it on; the probe below does).
    ("post", "/ingest/v1/testing/faults"),
    ("get", "/ingest/v1/testing/faults"),
    ("delete", "/ingest/v1/testing/faults"),
    ("delete", "/ingest/v1/testing/faults/{rule_id}"),
    ("get", "/ingest/v1/testing/requests"),
    ("delete", "/ingest/v1/testing/requests"),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document() -> Value {
    serde_json::from_str(nova_actions::api::OPENAPI).expect("src/api/openapi.json is JSON")
}

#[test]
fn the_document_is_openapi_3_1_of_this_version() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "nova-actions");
    assert_eq!(
        doc["info"]["version"],
        env!("CARGO_PKG_VERSION"),
        "info.version follows Cargo.toml"
    );
    assert!(doc["paths"].is_object());
    let scheme = &doc["components"]["securitySchemes"]["token"];
    assert_eq!(
        (&scheme["type"], &scheme["in"], &scheme["name"]),
        (
            &Value::from("apiKey"),
            &Value::from("header"),
            &Value::from("X-Auth-Token")
        )
    );
}

#[test]
fn every_routed_path_is_described_and_nothing_else() {
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (method, path) in ROUTES {
        if paths
            .get(*path)
            .and_then(|item| item.get(*method))
            .is_none()
        {
            missing.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "routes the code serves but src/api/openapi.json lacks: {missing:?}"
    );
    let mut unlisted = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(*method).is_some() && !ROUTES.contains(&(*method, path.as_str())) {
                unlisted.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "operations the document describes but ROUTES does not list: {unlisted:?}"
    );
}

#[test]
fn every_operation_has_a_unique_id_and_documents_its_answers() {
    let doc = document();
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let id = op["operationId"].as_str().unwrap_or_else(|| {
                panic!("{method} {path} has no operationId");
            });
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{method} {path} documents no success"
            );
            // Every token-protected operation documents the 401 the service answers without one.
            let open = op["security"].as_array().is_some_and(Vec::is_empty);
            assert!(
                open || responses.contains_key("401"),
                "{method} {path} needs a token but documents no 401"
            );
        }
    }
}

/// Every `$ref` points at something in the document.
#[test]
fn every_reference_resolves() {
    fn walk(doc: &Value, node: &Value, at: &str, bad: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    let resolved = target
                        .strip_prefix('#')
                        .and_then(|pointer| doc.pointer(pointer));
                    if resolved.is_none() {
                        bad.push(format!("{at}: {target}"));
                    }
                }
                for (k, v) in map {
                    walk(doc, v, &format!("{at}/{k}"), bad);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(doc, v, &format!("{at}/{i}"), bad);
                }
            }
            _ => {}
        }
    }
    let doc = document();
    let mut bad = Vec::new();
    walk(&doc, &doc, "#", &mut bad);
    assert!(bad.is_empty(), "unresolved references: {bad:?}");
}

/// A listed route with its placeholders filled: the service routes it (no 300 `choices`, no
/// router 404), so the list above is the code's, not a wish.
#[test]
fn every_listed_route_is_routed_by_the_service() {
    let server = TestServer::with_config(|c| {
        c.testing.fault_injection = true;
        c.testing.journal = true;
    });
    for (method, template) in ROUTES {
        let path = template
            .replace("{project_id}", "0123abcd")
            .replace("{server_id}", "a0000000-0000-4000-8000-000000000001")
            .replace("{request_id}", "req-1")
            .replace("{event}", "compute_stop_instance")
            .replace("{rule_id}", "1");
        let method = method.to_uppercase();
        let body: &[u8] = if method == "GET" || method == "HEAD" {
            b""
        } else {
            b"{}"
        };
        let r = send_raw(
            server.addr,
            &method,
            path.as_bytes(),
            &[
                ("X-Auth-Token", ADMIN),
                ("Accept", "application/json"),
                ("Content-Type", "application/json"),
            ],
            body,
        );
        assert_ne!(r.status, 300, "{method} {path} is not routed: {}", r.text());
        // The router's 404 (read side) and the write side's "no such route" both say this; a
        // 404 about the data (no such server) does not.
        assert!(
            !r.text().contains("The resource could not be found."),
            "{method} {path} is not routed: {} {}",
            r.status,
            r.text()
        );
    }
}

#[test]
fn get_openapi_json_serves_the_built_in_bytes_without_a_token() {
    let server = TestServer::start();
    let r = send_raw(server.addr, "GET", b"/openapi.json", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        r.body == nova_actions::api::OPENAPI.as_bytes(),
        "GET /openapi.json differs from src/api/openapi.json"
    );
    let head = send_raw(server.addr, "HEAD", b"/openapi.json", &[], b"");
    assert_eq!(head.status, 200);
    let post = send_raw(server.addr, "POST", b"/openapi.json", &[], b"");
    assert_eq!(post.status, 404, "only GET and HEAD are routed");
}

#[test]
fn the_openapi_command_prints_the_built_in_bytes() {
    let out = binary().arg("openapi").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == nova_actions::api::OPENAPI.as_bytes(),
        "`nova-actions openapi` differs from src/api/openapi.json"
    );
    let on_disk =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/openapi.json")).unwrap();
    assert!(out.stdout == on_disk, "the binary is older than the file");
}
