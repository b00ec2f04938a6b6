//! The ingest API: Nova's write semantics, seen through the read API afterwards.

use serde_json::{Value, json};

use crate::common::{ADMIN, TestServer};

const SID: &str = "d0000000-0000-4000-8000-000000000001";

fn created_server() -> TestServer {
    let s = TestServer::start();
    let r = s.write(
        "PUT",
        &format!("servers/{SID}"),
        ADMIN,
        r#"{"project_id": "proj-d", "user_id": "user-d", "host": "cmp-1"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    s
}

fn start_action(s: &TestServer, rid: &str, start: &str) -> Value {
    let body = json!({"request_id": rid, "action": "reboot", "user_id": "user-d", "project_id": "proj-d", "start_time": start});
    let r = s.write(
        "POST",
        &format!("servers/{SID}/actions"),
        ADMIN,
        &body.to_string(),
    );
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
    r.json()
}

fn show(s: &TestServer, rid: &str) -> Value {
    let r = s.get(
        &format!("/v2.1/servers/{SID}/os-instance-actions/{rid}"),
        ADMIN,
        "2.84",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["instanceAction"].clone()
}

#[test]
fn recorded_history_reads_back_with_nova_semantics() {
    let s = created_server();
    let created = start_action(&s, "req-1", "2024-01-01T00:00:00Z");
    assert_eq!(
        created["instanceAction"]["updated_at"],
        "2024-01-01T00:00:00.000000"
    );
    assert_eq!(created["instanceAction"]["events"], json!([]));

    let ev = |body: Value| {
        s.write(
            "POST",
            &format!("servers/{SID}/actions/req-1/events"),
            ADMIN,
            &body.to_string(),
        )
    };
    let r = ev(
        json!({"event": "compute_reboot", "host": "cmp-1", "start_time": "2024-01-01T00:00:05Z"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // Event start moves the action's updated_at to the event's start.
    assert_eq!(
        show(&s, "req-1")["updated_at"],
        "2024-01-01T00:00:05.000000"
    );
    let r = ev(
        json!({"event": "compute_reboot", "host": "cmp-1", "start_time": "2024-01-01T00:00:06Z"}),
    );
    assert_eq!(r.status, 201);

    let finish = |event: &str, body: Value| {
        s.write(
            "POST",
            &format!("servers/{SID}/actions/req-1/events/{event}/finish"),
            ADMIN,
            &body.to_string(),
        )
    };
    let r = finish(
        "compute_reboot",
        json!({"result": "Error", "traceback": "tb", "details": "boom", "finish_time": "2024-01-01T00:00:09Z"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let action = show(&s, "req-1");
    assert_eq!(action["message"], "Error");
    assert_eq!(action["updated_at"], "2024-01-01T00:00:09.000000");
    // The oldest event of that name was finished; events list newest first.
    let events = action["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["finish_time"], Value::Null);
    assert_eq!(events[1]["start_time"], "2024-01-01T00:00:05.000000");
    assert_eq!(events[1]["result"], "Error");
    assert_eq!(events[1]["traceback"], "tb");
    assert_eq!(events[1]["details"], "boom");
    assert_eq!(events[1]["host"], "cmp-1");
    assert_eq!(events[1]["hostId"].as_str().unwrap().len(), 56);

    // A later success never clears the message.
    let r = finish(
        "compute_reboot",
        json!({"result": "Success", "finish_time": "2024-01-01T00:00:10Z"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(show(&s, "req-1")["message"], "Error");

    let r = s.write(
        "POST",
        &format!("servers/{SID}/actions/req-1/finish"),
        ADMIN,
        r#"{"finish_time": "2024-01-01T00:01:00Z"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        show(&s, "req-1")["updated_at"],
        "2024-01-01T00:01:00.000000"
    );
}

#[test]
fn not_found_errors_use_novas_wording() {
    let s = created_server();
    let r = s.write(
        "POST",
        &format!("servers/{SID}/actions/req-x/events"),
        ADMIN,
        r#"{"event": "e"}"#,
    );
    assert_eq!(r.status, 404);
    assert_eq!(
        r.text(),
        format!(
            r#"{{"itemNotFound": {{"code": 404, "message": "Action for request_id req-x on instance {SID} not found"}}}}"#
        )
    );
    start_action(&s, "req-1", "2024-01-01T00:00:00Z");
    let r = s.write(
        "POST",
        &format!("servers/{SID}/actions/req-1/events/nope/finish"),
        ADMIN,
        r#"{"result": "Success"}"#,
    );
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json()["itemNotFound"]["message"],
        "Event nope not found for action id req-1"
    );
    let other = "d0000000-0000-4000-8000-0000000000ff";
    let r = s.write(
        "POST",
        &format!("servers/{other}/actions"),
        ADMIN,
        r#"{"request_id": "r", "action": "a"}"#,
    );
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json()["itemNotFound"]["message"],
        format!("Instance {other} could not be found.")
    );
}

#[test]
fn fallback_attaches_to_the_newest_action_without_touching_updated_at() {
    let s = created_server();
    start_action(&s, "req-old", "2024-01-01T00:00:00Z");
    start_action(&s, "req-new", "2024-01-02T00:00:00Z");
    let body = json!({"event": "compute_restart", "start_time": "2024-01-03T00:00:00Z", "fallback_to_last_action": true});
    let r = s.write(
        "POST",
        &format!("servers/{SID}/actions/req-gone/events"),
        ADMIN,
        &body.to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let action = show(&s, "req-new");
    assert_eq!(action["events"][0]["event"], "compute_restart");
    assert_eq!(action["updated_at"], "2024-01-02T00:00:00.000000");
}

#[test]
fn bad_input_names_the_field_and_writes_nothing() {
    let s = created_server();
    let cases = [
        (
            r#"{"request_id": "r", "action": "a", "start_time": "soon"}"#,
            "Invalid input for field/attribute start_time. Value: soon. 'soon' is not a 'date-time'",
        ),
        (r#"{"request_id": "r"}"#, "'action' is a required property"),
        (
            r#"{"request_id": 5, "action": "a"}"#,
            "Invalid input for field/attribute request_id. Value: 5. 5 is not of type 'string'",
        ),
        (
            r#"{"request_id": "r", "action": "a", "colour": "red"}"#,
            "Additional properties are not allowed ('colour' was unexpected)",
        ),
        (
            r#"{"request_id": "", "action": "a"}"#,
            "Invalid input for field/attribute request_id. Value: . '' should be non-empty",
        ),
    ];
    for (body, message) in cases {
        let r = s.write("POST", &format!("servers/{SID}/actions"), ADMIN, body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.json()["badRequest"]["message"], message, "{body}");
    }
    let r = s.write(
        "POST",
        &format!("servers/{SID}/actions"),
        ADMIN,
        "{not json",
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["badRequest"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Malformed JSON")
    );
    let long = "x".repeat(256);
    let r = s.write(
        "POST",
        &format!("servers/{SID}/actions"),
        ADMIN,
        &json!({"request_id": long, "action": "a"}).to_string(),
    );
    assert_eq!(r.status, 400);
    let r = s.write("PUT", "servers/NOT-A-UUID", ADMIN, r#"{"project_id": "p"}"#);
    assert_eq!(r.status, 400);
    // Nothing was written by any of them.
    let list = s.get(
        &format!("/v2.1/servers/{SID}/os-instance-actions"),
        ADMIN,
        "2.84",
    );
    assert_eq!(list.text(), r#"{"instanceActions": []}"#);
}

#[test]
fn retries_do_not_duplicate() {
    let s = created_server();
    start_action(&s, "req-1", "2024-01-01T00:00:00Z");
    let body = json!({"request_id": "req-1", "action": "reboot", "user_id": "user-d", "project_id": "proj-d", "start_time": "2024-01-01T00:00:00Z"});
    let r = s.write(
        "POST",
        &format!("servers/{SID}/actions"),
        ADMIN,
        &body.to_string(),
    );
    assert_eq!(r.status, 200, "a retry answers 200, not 201");
    let ev = json!({"event": "e", "host": "h", "start_time": "2024-01-01T00:00:01Z"}).to_string();
    assert_eq!(
        s.write(
            "POST",
            &format!("servers/{SID}/actions/req-1/events"),
            ADMIN,
            &ev
        )
        .status,
        201
    );
    assert_eq!(
        s.write(
            "POST",
            &format!("servers/{SID}/actions/req-1/events"),
            ADMIN,
            &ev
        )
        .status,
        200
    );
    let list = s
        .get(
            &format!("/v2.1/servers/{SID}/os-instance-actions"),
            ADMIN,
            "2.84",
        )
        .json();
    assert_eq!(list["instanceActions"].as_array().unwrap().len(), 1);
    assert_eq!(show(&s, "req-1")["events"].as_array().unwrap().len(), 1);
}

#[test]
fn writes_need_admin_or_service_and_a_token() {
    let s = created_server();
    let body = r#"{"request_id": "r", "action": "a"}"#;
    let r = s.write(
        "POST",
        &format!("servers/{SID}/actions"),
        "user-d:proj-d",
        body,
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["forbidden"]["message"],
        "Policy doesn't allow nova_actions:write to be performed."
    );
    let r = s.write(
        "POST",
        &format!("servers/{SID}/actions"),
        "nova:service:service",
        body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = s.send(
        "POST",
        &format!("/ingest/v1/servers/{SID}/actions"),
        &[],
        body.as_bytes(),
    );
    assert_eq!(r.status, 401);
}

#[test]
fn soft_delete_and_purge() {
    let s = created_server();
    start_action(&s, "req-1", "2024-01-01T00:00:00Z");
    let r = s.write(
        "DELETE",
        &format!("servers/{SID}"),
        ADMIN,
        r#"{"deleted_at": "2024-02-01T00:00:00Z"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["server"]["deleted"], true);
    assert_eq!(
        r.json()["server"]["deleted_at"],
        "2024-02-01T00:00:00.000000"
    );
    let path = format!("/v2.1/servers/{SID}/os-instance-actions");
    assert_eq!(s.get(&path, ADMIN, "2.20").status, 404);
    assert_eq!(s.get(&path, ADMIN, "2.21").status, 200);
    let r = s.write("POST", &format!("servers/{SID}/purge"), ADMIN, "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["purged"]["actions"], 1);
    assert_eq!(s.get(&path, ADMIN, "2.21").status, 404);
    assert_eq!(
        s.write("POST", &format!("servers/{SID}/purge"), ADMIN, "")
            .status,
        404
    );
}

#[test]
fn http_import_is_idempotent_and_stops_at_a_bad_line() {
    let s = TestServer::start();
    let fixture = crate::common::fixture();
    let first = s.import(&fixture);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(
        first.json()["imported"],
        json!({"servers": 4, "actions": 14, "events": 15, "unchanged": 0})
    );
    let again = s.import(&fixture);
    assert_eq!(
        again.json()["imported"],
        json!({"servers": 4, "actions": 0, "events": 0, "unchanged": 14})
    );
    let list = s
        .get(
            "/v2.1/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions",
            ADMIN,
            "2.1",
        )
        .json();
    assert_eq!(list["instanceActions"].as_array().unwrap().len(), 10);

    let good = r#"{"uuid":"e0000000-0000-4000-8000-000000000001","project_id":"p","actions":[]}"#;
    let bad = r#"{"uuid":"e0000000-0000-4000-8000-000000000002","project_id":"p","actions":[{"request_id":"r","action":"a","start_time":"never"}]}"#;
    let r = s.import(format!("{good}\n\n{bad}\n").as_bytes());
    assert_eq!(r.status, 400);
    let message = r.json()["badRequest"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("Line 3: ") && message.contains("actions[0].start_time"),
        "{message}"
    );
    assert_eq!(
        s.get(
            "/v2.1/servers/e0000000-0000-4000-8000-000000000001/os-instance-actions",
            ADMIN,
            "2.1"
        )
        .status,
        200
    );
    assert_eq!(
        s.get(
            "/v2.1/servers/e0000000-0000-4000-8000-000000000002/os-instance-actions",
            ADMIN,
            "2.1"
        )
        .status,
        404
    );
}

#[test]
fn write_answers_show_the_action_as_the_newest_read_does() {
    // The decision lives in version::WRITE_VIEW: a write answers with what an admin reading the
    // action at `latest` sees, whatever fields the newest microversion adds.
    let s = created_server();
    start_action(&s, "req-w", "2024-01-01T00:00:00Z");
    let event = s.write(
        "POST",
        &format!("servers/{SID}/actions/req-w/events"),
        ADMIN,
        r#"{"event": "compute_reboot_instance", "host": "cmp-1", "details": "d"}"#,
    );
    assert_eq!(event.status, 201, "{}", event.text());
    let finished = s.write(
        "POST",
        &format!("servers/{SID}/actions/req-w/events/compute_reboot_instance/finish"),
        ADMIN,
        r#"{"result": "Error", "traceback": "tb"}"#,
    );
    assert_eq!(finished.status, 200, "{}", finished.text());
    let read = s.get(
        &format!("/v2.1/servers/{SID}/os-instance-actions/req-w"),
        ADMIN,
        "latest",
    );
    assert_eq!(read.status, 200);
    let newest = read.header("OpenStack-API-Version").unwrap().to_string();
    assert_eq!(
        newest,
        format!("compute 2.{}", nova_actions::api::version::MAX_MINOR)
    );
    assert_eq!(
        finished.text(),
        read.text(),
        "write answer vs read at {newest}"
    );
    for field in ["hostId", "host", "details", "traceback", "updated_at"] {
        assert!(read.text().contains(&format!("\"{field}\"")), "{field}");
    }
}
