//! Server names, statuses and update times through the write API and the bulk format, and
//! what the server lookup endpoints make of them.

use crate::common::{ADMIN, TestServer};

const S: &str = "9a3f0c52-6b1e-4d7a-9a55-0c6f2d0f1e11";
const OWNER: &str = "alice:proj-n";

fn show(s: &TestServer, token: &str) -> crate::common::Response {
    s.get(&format!("/v2.1/servers/{S}"), token, "2.100")
}

#[test]
fn a_server_gets_its_name_and_status_and_bad_ones_change_nothing() {
    let s = TestServer::start();
    let put = |body: &str| s.write("PUT", &format!("servers/{S}"), ADMIN, body);
    let r = put(
        r#"{"project_id": "proj-n", "user_id": "alice", "name": "web-1", "status": "SHUTOFF", "host": "c1", "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-02T00:00:00Z"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = show(&s, OWNER).json();
    let server = &doc["server"];
    assert_eq!(server["name"], "web-1");
    assert_eq!(server["status"], "SHUTOFF");
    assert_eq!(server["created"], "2020-01-01T00:00:00Z");
    assert_eq!(server["updated"], "2020-01-02T00:00:00Z");
    assert!(server.get("OS-EXT-SRV-ATTR:host").is_none(), "{doc}");
    assert_eq!(
        show(&s, ADMIN).json()["server"]["OS-EXT-SRV-ATTR:host"],
        "c1"
    );

    let refused = [
        (
            r#"{"project_id": "proj-n", "status": "RUNNING"}"#,
            "'RUNNING' is not one of ['ACTIVE'",
        ),
        (
            r#"{"project_id": "proj-n", "name": " web"}"#,
            "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.",
        ),
        (
            r#"{"project_id": "proj-n", "name": "web\u0007"}"#,
            "An invalid 'name' value was provided",
        ),
        (
            r#"{"project_id": "proj-n", "name": ""}"#,
            "should be non-empty",
        ),
        (
            r#"{"project_id": "proj-n", "name": 7}"#,
            "is not of type 'string'",
        ),
        (
            r#"{"project_id": "proj-n", "colour": "red"}"#,
            "('colour' was unexpected)",
        ),
    ];
    for (body, message) in refused {
        let r = put(body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains(message), "{body}: {}", r.text());
    }
    assert_eq!(
        show(&s, OWNER).json(),
        doc,
        "a refused write changed nothing"
    );

    // A write that changes nothing keeps `updated`; one that changes something moves it to now.
    let same = r#"{"project_id": "proj-n", "user_id": "alice", "name": "web-1", "status": "SHUTOFF", "host": "c1"}"#;
    assert_eq!(put(same).status, 200);
    assert_eq!(show(&s, OWNER).json(), doc);
    assert_eq!(put(&same.replace("SHUTOFF", "ACTIVE")).status, 200);
    let moved = show(&s, OWNER).json();
    assert_eq!(moved["server"]["status"], "ACTIVE");
    assert_eq!(
        moved["server"]["created"], "2020-01-01T00:00:00Z",
        "creation time kept"
    );
    assert!(
        moved["server"]["updated"].as_str().unwrap() > "2026",
        "{moved}"
    );
}

#[test]
fn a_deleted_server_is_gone_from_lookups_but_listed_by_changes_since_as_deleted() {
    let s = TestServer::start();
    let body = r#"{"project_id": "proj-n", "user_id": "alice", "name": "db-1"}"#;
    assert_eq!(
        s.write("PUT", &format!("servers/{S}"), ADMIN, body).status,
        200
    );
    let r = s.write(
        "DELETE",
        &format!("servers/{S}"),
        ADMIN,
        r#"{"deleted_at": "2030-01-01T00:00:00Z"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(show(&s, OWNER).status, 404);
    assert_eq!(show(&s, ADMIN).status, 404);
    let plain = s.get("/v2.1/servers/detail", OWNER, "2.100").json();
    assert_eq!(plain["servers"].as_array().unwrap().len(), 0, "{plain}");
    let changed = s
        .get(
            "/v2.1/servers/detail?changes-since=2030-01-01T00:00:00Z",
            OWNER,
            "2.100",
        )
        .json();
    let listed = &changed["servers"][0];
    assert_eq!(
        (listed["id"].as_str(), listed["status"].as_str()),
        (Some(S), Some("DELETED"))
    );
    assert_eq!(
        listed["updated"], "2030-01-01T00:00:00Z",
        "deletion moves updated_at"
    );
    let later = s
        .get(
            "/v2.1/servers/detail?changes-since=2030-01-01T00:00:01Z",
            OWNER,
            "2.100",
        )
        .json();
    assert_eq!(later["servers"].as_array().unwrap().len(), 0, "{later}");
    // Its actions stay readable (2.21+), as in Nova.
    let actions = s.get(
        &format!("/v2.1/servers/{S}/os-instance-actions"),
        OWNER,
        "2.21",
    );
    assert_eq!(actions.status, 200);
}

#[test]
fn lines_without_names_round_trip_and_names_and_statuses_come_back() {
    let s = TestServer::start();
    let old = r#"{"uuid":"a0000000-0000-4000-8000-000000000001","project_id":"p","user_id":null,"host":"h","deleted":false,"actions":[]}"#;
    let named = r#"{"uuid":"a0000000-0000-4000-8000-000000000002","project_id":"p","user_id":"u","name":"web-1","status":"PAUSED","host":null,"deleted":false,"created_at":"2020-01-01T00:00:00.000000","updated_at":"2020-01-02T00:00:00.000000","actions":[]}"#;
    let r = s.import(format!("{old}\n{named}\n").as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let export = s.send("GET", "/ingest/v1/export", &[("X-Auth-Token", ADMIN)], b"");
    assert_eq!(export.text(), format!("{old}\n{named}\n"));
    // A line from before servers had an update time counts as updated when created.
    let older = r#"{"uuid":"a0000000-0000-4000-8000-000000000003","project_id":"p","user_id":"u","host":null,"deleted":false,"created_at":"2019-05-01T00:00:00.000000","actions":[]}"#;
    assert_eq!(s.import(older.as_bytes()).status, 200);
    let since = s
        .get(
            "/v2.1/servers/detail?changes-since=2019-05-01T00:00:00Z&changes-before=2019-05-01T00:00:00Z",
            "u:p",
            "2.100",
        )
        .json();
    let listed: Vec<(&str, &str)> = since["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["updated"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [(
            "a0000000-0000-4000-8000-000000000003",
            "2019-05-01T00:00:00Z"
        )],
        "{since}"
    );
    let bad = named.replace("PAUSED", "paused");
    let r = s.import(bad.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("'paused' is not one of"), "{}", r.text());
}

/// The rules of spec 01 that are not specific to actions hold for the server lookups too.
#[test]
fn server_lookups_share_routing_identity_versions_and_faults() {
    let s = TestServer::start();
    let body = r#"{"project_id": "0123abcd", "user_id": "alice", "name": "web-1"}"#;
    assert_eq!(
        s.write("PUT", &format!("servers/{S}"), ADMIN, body).status,
        200
    );
    let owner = "alice:0123abcd";
    // The project in the URL goes into the links, as Nova's `_get_project_id` does.
    let r = s.get(&format!("/v2.1/0123abcd/servers/{S}"), owner, "2.1");
    assert_eq!(r.status, 200, "{}", r.text());
    let links = &r.json()["server"]["links"];
    let host = s.host();
    assert_eq!(
        links[0]["href"],
        format!("http://{host}/v2.1/0123abcd/servers/{S}")
    );
    assert_eq!(
        links[1]["href"],
        format!("http://{host}/0123abcd/servers/{S}")
    );
    // Another project in the URL, no token, a version out of range, another method.
    let r = s.get("/v2.1/4567abcd/servers/detail", owner, "2.1");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.send("GET", "/v2.1/servers/detail", &[], b"");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = s.get("/v2.1/servers/detail", owner, "2.999");
    assert_eq!(r.status, 406, "{}", r.text());
    let r = s.send(
        "DELETE",
        &format!("/v2.1/servers/{S}"),
        &[("X-Auth-Token", owner)],
        b"",
    );
    assert_eq!(r.status, 404, "{}", r.text());
    // Every answer carries Nova's request ids and version headers.
    let r = s.get("/v2.1/servers", owner, "2.75");
    crate::common::assert_request_ids(&r);
    assert_eq!(r.header("openstack-api-version"), Some("compute 2.75"));
    assert_eq!(r.json()["servers"][0]["name"], "web-1");
}
