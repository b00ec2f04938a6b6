//! Read-API rules of docs/spec/01-read-api.md that the recorded exchanges do not cover.

use crate::common::{ADMIN, TestServer, assert_request_ids, fixture_server};

const A1: &str = "a0000000-0000-4000-8000-000000000001";
const OWNER: &str = "user-a:proj-a";

fn list_path(query: &str) -> String {
    format!("/v2.1/servers/{A1}/os-instance-actions{query}")
}

fn request_ids(body: &serde_json::Value) -> Vec<String> {
    body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["request_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn missing_token_is_keystonemiddlewares_401_even_on_route_misses() {
    let s = fixture_server();
    for path in [
        list_path(""),
        "/v2.1/nothing/here".to_string(),
        "/v2/servers".to_string(),
    ] {
        let r = s.send("GET", &path, &[], b"");
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(
            r.text(),
            r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#
        );
        assert_eq!(
            r.header("WWW-Authenticate"),
            Some("Keystone uri=\"http://127.0.0.1/identity\"")
        );
        assert_eq!(
            r.header("Content-Type"),
            Some("application/json; charset=UTF-8")
        );
        assert_eq!(r.header("OpenStack-API-Version"), None);
        assert_request_ids(&r);
    }
}

#[test]
fn route_misses_follow_accept_and_methods() {
    let s = fixture_server();
    let token = ("X-Auth-Token", OWNER);
    let r = s.send("GET", &list_path("/"), &[token], b"");
    assert_eq!(
        (r.status, r.header("Content-Type")),
        (404, Some("text/plain; charset=UTF-8"))
    );
    assert_eq!(
        r.text(),
        "404 Not Found\n\nThe resource could not be found.\n\n   "
    );
    assert_request_ids(&r);
    let r = s.send("GET", &list_path(".json"), &[token, ("Accept", "*/*")], b"");
    assert_eq!(
        (r.status, r.header("Content-Type")),
        (404, Some("text/html; charset=UTF-8"))
    );
    assert!(
        r.text()
            .starts_with("<html>\n <head>\n  <title>404 Not Found</title>")
    );
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = s.send(
            method,
            &list_path(""),
            &[token, ("Accept", "application/json")],
            b"",
        );
        assert_eq!(r.status, 404, "{method} is a route miss, never 405");
        assert_eq!(r.header("OpenStack-API-Version"), None);
    }
    let r = s.send("HEAD", &list_path(""), &[token, ("Accept", "*/*")], b"");
    assert_eq!(
        (r.status, r.header("Content-Type")),
        (404, Some("text/html; charset=UTF-8"))
    );
    assert!(r.body.is_empty());
    let r = s.send("GET", &list_path("?_method=DELETE"), &[token], b"");
    assert_eq!(r.status, 404);
    let r = s.send("POST", &list_path("?_method=GET"), &[token], b"");
    assert_eq!(
        r.status, 200,
        "POST ?_method=GET is served as the GET at 2.1"
    );
    let r = s.send("OPTIONS", &list_path(""), &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("Content-Type"), None);
    assert_eq!(r.header("x-openstack-request-id"), None);
}

#[test]
fn doubled_slashes_collapse() {
    let s = fixture_server();
    let r = s.send(
        "GET",
        &format!("//v2.1//servers/{A1}//os-instance-actions"),
        &[("X-Auth-Token", OWNER)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(request_ids(&r.json()).len(), 10);
}

#[test]
fn unknown_top_level_paths_offer_choices() {
    let s = fixture_server();
    let r = s.send("GET", "/servers", &[], b"");
    assert_eq!(r.status, 300);
    let body = r.json();
    let host = s.host();
    assert_eq!(
        body["choices"][0]["links"][0]["href"],
        format!("http://{host}/v2/servers")
    );
    assert_eq!(
        body["choices"][1]["links"][0]["href"],
        format!("http://{host}/v2.1/servers")
    );
    assert_eq!(body["choices"][1]["id"], "v2.1");
}

#[test]
fn unsupported_content_type_is_415_and_vnd_accept_is_honoured() {
    let s = fixture_server();
    let r = s.send(
        "GET",
        &list_path(""),
        &[("X-Auth-Token", OWNER), ("Content-Type", "application/xml")],
        b"",
    );
    assert_eq!(r.status, 415);
    assert_eq!(
        r.text(),
        r#"{"badMediaType": {"code": 415, "message": "Unsupported Content-Type"}}"#
    );
    assert_eq!(r.header("OpenStack-API-Version"), Some("compute 2.1"));
    let r = s.send(
        "GET",
        &list_path(""),
        &[
            ("X-Auth-Token", OWNER),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    let r = s.send(
        "GET",
        &list_path(""),
        &[
            ("X-Auth-Token", OWNER),
            ("Accept", "application/vnd.openstack.compute+json"),
        ],
        b"",
    );
    assert_eq!(
        r.header("Content-Type"),
        Some("application/vnd.openstack.compute+json")
    );
}

#[test]
fn pages_chain_with_links_until_a_short_page() {
    let s = fixture_server();
    let mut seen = Vec::new();
    let mut next = list_path("?limit=4");
    loop {
        let r = s.get(&next, OWNER, "2.84");
        assert_eq!(r.status, 200, "{}", r.text());
        let body = r.json();
        seen.extend(request_ids(&body));
        match body["links"][0]["href"].as_str() {
            Some(href) => {
                next = href
                    .strip_prefix(&format!("http://{}", s.host()))
                    .unwrap()
                    .to_string();
            }
            None => {
                assert!(body.get("links").is_none(), "links is absent, never []");
                break;
            }
        }
    }
    let all = request_ids(&s.get(&list_path(""), OWNER, "2.84").json());
    assert_eq!(seen, all);
    assert_eq!(all.len(), 10);
    // An exactly full last page still links to the (empty) next one.
    let r = s.get(&list_path("?limit=10"), OWNER, "2.84").json();
    assert!(
        r["links"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with("limit=10&marker=req-a1000000-0000-4000-8000-000000000001")
    );
    let r = s.get(&list_path("?limit=0&marker=bogus"), OWNER, "2.84");
    assert_eq!(r.text(), r#"{"instanceActions": []}"#);
}

#[test]
fn links_repeat_parameters_sorted_and_encoded() {
    let s = fixture_server();
    let r = s
        .get(
            &list_path("?limit=1%0A&changes-since=2000-01-01T00:00:00Z"),
            OWNER,
            "2.84",
        )
        .json();
    let href = r["links"][0]["href"].as_str().unwrap();
    assert_eq!(
        href,
        format!(
            "http://{}{}?changes-since=2000-01-01T00%3A00%3A00Z&limit=1%0A&marker=req-a1000000-0000-4000-8000-00000000000a",
            s.host(),
            list_path("")
        )
    );
}

#[test]
fn project_goes_into_links_when_the_url_contains_it() {
    let s = fixture_server();
    // "proj-a" appears nowhere in the URL; a project named "e" matches "servers".
    let r = s.get(&list_path("?limit=1"), OWNER, "2.84").json();
    assert!(
        r["links"][0]["href"]
            .as_str()
            .unwrap()
            .contains("/v2.1/servers/")
    );
    let r = s.get(&list_path("?limit=1"), "admin:e", "2.84").json();
    assert!(
        r["links"][0]["href"]
            .as_str()
            .unwrap()
            .contains("/v2.1/e/servers/"),
        "{r}"
    );
}

#[test]
fn compute_link_prefix_replaces_scheme_and_host() {
    let s = TestServer::with_config(|c| {
        c.api.compute_link_prefix = Some("https://compute.example.org/nova".into());
    });
    assert_eq!(s.import(&crate::common::fixture()).status, 200);
    let r = s.get(&list_path("?limit=1"), OWNER, "2.84").json();
    assert!(
        r["links"][0]["href"]
            .as_str()
            .unwrap()
            .starts_with("https://compute.example.org/nova/v2.1/servers/"),
        "{r}"
    );
}

#[test]
fn max_limit_caps_pages() {
    let s = TestServer::with_config(|c| c.api.max_limit = 3);
    assert_eq!(s.import(&crate::common::fixture()).status, 200);
    let r = s
        .get(&list_path("?limit=99999999999999999999999"), OWNER, "2.84")
        .json();
    assert_eq!(request_ids(&r).len(), 3);
    assert!(
        r["links"][0]["href"]
            .as_str()
            .unwrap()
            .contains("limit=99999999999999999999999&")
    );
    let r = s.get(&list_path(""), OWNER, "2.84").json();
    assert_eq!(request_ids(&r).len(), 3);
    // Below 2.58 there is no paging at all.
    let r = s.get(&list_path(""), OWNER, "2.57").json();
    assert_eq!(request_ids(&r).len(), 10);
}

#[test]
fn time_filters_are_inclusive_and_ordered() {
    let s = fixture_server();
    let ids = |q: &str| request_ids(&s.get(&list_path(q), OWNER, "2.84").json());
    assert_eq!(
        ids("?changes-since=2018-04-25T01:45:03Z"),
        [
            "req-a1000000-0000-4000-8000-00000000000a",
            "req-a1000000-0000-4000-8000-000000000009",
            "req-a1000000-0000-4000-8000-000000000008"
        ]
    );
    assert_eq!(
        ids("?changes-before=2018-04-25T01:27:04Z"),
        [
            "req-a1000000-0000-4000-8000-000000000002",
            "req-a1000000-0000-4000-8000-000000000001"
        ]
    );
    assert_eq!(
        ids("?changes-since=2018-04-25T03:27:04%2B02:00&changes-before=2018-04-25T01:27:04Z"),
        ["req-a1000000-0000-4000-8000-000000000002"]
    );
    let r = s.get(
        &list_path("?changes-since=2018-04-25T01:30:00Z&changes-before=2018-04-25T01:29:00Z"),
        OWNER,
        "2.84",
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["badRequest"]["message"],
        "The value of changes-since must be less than or equal to changes-before."
    );
}

#[test]
fn query_must_decode_as_utf8_at_every_version() {
    let s = fixture_server();
    for version in ["2.1", "2.84"] {
        let r = s.get(&list_path("?x=%ff"), OWNER, version);
        assert_eq!(r.status, 400, "{version}");
        assert_eq!(
            r.json()["badRequest"]["message"],
            "Query string is not UTF-8 encoded"
        );
    }
}

#[test]
fn legacy_v2_ignores_versions_and_queries() {
    let s = fixture_server();
    let r = s.get(
        &format!("/v2/servers/{A1}/os-instance-actions?limit=1&foo=2"),
        OWNER,
        "2.84",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("OpenStack-API-Version"), None);
    assert_eq!(r.header("Vary"), None);
    assert_request_ids(&r);
    let body = r.json();
    assert_eq!(request_ids(&body).len(), 10);
    assert!(body["instanceActions"][0].get("updated_at").is_none());
    let deleted = s.get(
        "/v2/servers/a0000000-0000-4000-8000-000000000002/os-instance-actions",
        ADMIN,
        "2.84",
    );
    assert_eq!(deleted.status, 404);
}

#[test]
fn show_rejects_queries_from_2_102_only() {
    let s = fixture_server();
    let path = format!(
        "/v2.1/servers/{A1}/os-instance-actions/req-a1000000-0000-4000-8000-000000000004?b=1&a=2"
    );
    assert_eq!(s.get(&path, OWNER, "2.101").status, 200);
    let r = s.get(&path, OWNER, "2.102");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["badRequest"]["message"],
        "Additional properties are not allowed ('a', 'b' were unexpected)"
    );
}

#[test]
fn json_text_escapes_like_python() {
    let s = TestServer::start();
    let line = r#"{"uuid":"f0000000-0000-4000-8000-000000000001","project_id":"p","actions":[{"request_id":"req-é","action":"créer 😀","user_id":null,"project_id":"p","start_time":"2020-01-01T00:00:00"}]}"#;
    assert_eq!(s.import(line.as_bytes()).status, 200);
    let r = s.get(
        "/v2.1/servers/f0000000-0000-4000-8000-000000000001/os-instance-actions/req-%C3%A9",
        ADMIN,
        "2.1",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains(r#""action": "cr\u00e9er \ud83d\ude00""#),
        "{}",
        r.text()
    );
    assert!(r.text().contains(r#""request_id": "req-\u00e9""#));
}

#[test]
fn ties_in_start_time_list_the_later_recorded_first() {
    let s = fixture_server();
    let ids = request_ids(&s.get(&list_path(""), OWNER, "2.1").json());
    let pause = ids.iter().position(|i| i.ends_with("07")).unwrap();
    let unpause = ids.iter().position(|i| i.ends_with("08")).unwrap();
    assert!(unpause < pause);
}

/// A history longer than one chunk: streamed below 2.58, every action once, newest first.
#[test]
fn long_unpaged_lists_stream_every_action_in_order() {
    let s = TestServer::start();
    let actions: Vec<String> = (0..1234)
        .map(|i| {
            format!(
                r#"{{"request_id":"req-{i:05}","action":"reboot","user_id":"u","project_id":"p","start_time":"2020-01-01T00:{:02}:{:02}.{:06}"}}"#,
                i / 3600 % 60,
                i / 60 % 60,
                i % 60
            )
        })
        .collect();
    let line = format!(
        r#"{{"uuid":"f1000000-0000-4000-8000-000000000001","project_id":"p","actions":[{}]}}"#,
        actions.join(",")
    );
    assert_eq!(s.import(line.as_bytes()).status, 200);
    let r = s.get(
        "/v2.1/servers/f1000000-0000-4000-8000-000000000001/os-instance-actions",
        ADMIN,
        "2.57",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    let ids = request_ids(&r.json());
    let expected: Vec<String> = (0..1234).rev().map(|i| format!("req-{i:05}")).collect();
    assert_eq!(ids, expected);
}
