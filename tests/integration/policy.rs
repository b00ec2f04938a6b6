//! Who sees what: the default policy for every caller shape, operator overrides, and reloading
//! the policy file while serving.

use crate::backend::StoreArg;
use std::time::{Duration, Instant};

use crate::common::{Response, TempDir, TestServer, fixture};

const LIST: &str = "/v2.1/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions";
const SHOW: &str = "/v2.1/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions/req-a1000000-0000-4000-8000-000000000004";

fn token(project: &str, roles: &[&str]) -> String {
    format!("someone:{project}:{}", roles.join(","))
}

/// The keys of the first event of a show answer, or None when there is no `events` key.
fn event_keys(r: &Response) -> Option<Vec<String>> {
    let body = r.json();
    let events = body["instanceAction"].get("events")?;
    Some(events[0].as_object().unwrap().keys().cloned().collect())
}

fn keys(names: &[&str]) -> Option<Vec<String>> {
    let mut v: Vec<String> = names.iter().map(std::string::ToString::to_string).collect();
    v.sort();
    Some(v)
}

fn sorted(k: Option<Vec<String>>) -> Option<Vec<String>> {
    k.map(|mut v| {
        v.sort();
        v
    })
}

const BASIC: &[&str] = &["event", "start_time", "finish_time", "result", "hostId"];
const FULL: &[&str] = &[
    "event",
    "start_time",
    "finish_time",
    "result",
    "traceback",
    "host",
    "hostId",
    "details",
];

fn loaded(adjust: impl FnOnce(&mut nova_actions::config::Config)) -> TestServer {
    let s = TestServer::with_config(adjust);
    assert_eq!(s.import(&fixture()).status, 200);
    s
}

#[test]
fn default_policy_matrix() {
    let s = loaded(|_| ());
    let role_sets: [&[&str]; 5] = [
        &["reader"],
        &["member"],
        &["member", "reader"],
        &["admin"],
        &[],
    ];
    for project in ["proj-a", "proj-b"] {
        for roles in role_sets {
            let who = token(project, roles);
            let admin = roles.contains(&"admin");
            let owner = project == "proj-a";
            let reader = roles.contains(&"reader");
            let list = s.get(LIST, &who, "2.84");
            let show = s.get(SHOW, &who, "2.84");
            let label = format!("{project} {roles:?}");
            if !owner && !admin {
                for r in [&list, &show] {
                    assert_eq!(r.status, 404, "{label}");
                    assert_eq!(
                        r.json()["itemNotFound"]["message"],
                        "Instance a0000000-0000-4000-8000-000000000001 could not be found.",
                        "{label}"
                    );
                }
            } else if !admin && !reader {
                assert_eq!(list.status, 403, "{label}");
                assert_eq!(
                    list.json()["forbidden"]["message"],
                    "Policy doesn't allow os_compute_api:os-instance-actions:list to be performed."
                );
                assert_eq!(show.status, 403, "{label}");
                assert_eq!(
                    show.json()["forbidden"]["message"],
                    "Policy doesn't allow os_compute_api:os-instance-actions:show to be performed."
                );
            } else {
                assert_eq!(list.status, 200, "{label}");
                assert_eq!(
                    list.json()["instanceActions"].as_array().unwrap().len(),
                    10,
                    "{label}"
                );
                assert_eq!(show.status, 200, "{label}");
                let expected = if admin { keys(FULL) } else { keys(BASIC) };
                assert_eq!(sorted(event_keys(&show)), expected, "{label}");
            }
        }
    }
}

fn with_policy(text: &str, file: &str) -> (TestServer, TempDir) {
    let dir = TempDir::new();
    let path = dir.0.join(file);
    std::fs::write(&path, text).unwrap();
    let s = loaded(|c| c.policy.file = Some(path.clone()));
    (s, dir)
}

#[test]
fn an_override_lets_members_read() {
    let (s, _dir) = with_policy(
        "\"os_compute_api:os-instance-actions:list\": \"role:member and project_id:%(project_id)s\"\n",
        "policy.yaml",
    );
    let member = token("proj-a", &["member"]);
    assert_eq!(s.get(LIST, &member, "2.84").status, 200);
    assert_eq!(
        s.get(SHOW, &member, "2.84").status,
        403,
        "show keeps its default"
    );
    assert_eq!(
        s.get(LIST, &token("proj-b", &["member"]), "2.84").status,
        404
    );
}

#[test]
fn an_override_hides_events_from_admins() {
    let (s, _dir) = with_policy(
        r#"{"os_compute_api:os-instance-actions:events": "!"}"#,
        "policy.json",
    );
    let show = s.get(SHOW, "admin:admin", "2.84");
    assert_eq!(
        sorted(event_keys(&show)),
        keys(&[
            "event",
            "start_time",
            "finish_time",
            "result",
            "hostId",
            "details"
        ])
    );
    let old = s.get(SHOW, "admin:admin", "2.50");
    assert_eq!(
        event_keys(&old),
        None,
        "below 2.51 a caller failing `events` sees no events at all"
    );
}

#[test]
fn an_override_shows_details_to_owners() {
    let (s, _dir) = with_policy(
        "# owners may see why their resize failed\n'os_compute_api:os-instance-actions:events:details': 'project_id:%(project_id)s'\n",
        "policy.yaml",
    );
    let show = s.get(SHOW, &token("proj-a", &["reader"]), "2.84");
    assert_eq!(
        sorted(event_keys(&show)),
        keys(&[
            "event",
            "start_time",
            "finish_time",
            "result",
            "hostId",
            "details"
        ])
    );
    assert_eq!(
        show.json()["instanceAction"]["events"][0]["details"],
        "Resize error: not able to execute ssh command"
    );
}

#[test]
fn the_legacy_rule_name_covers_list_and_show() {
    let (s, _dir) = with_policy(
        "\"os_compute_api:os-instance-actions\": \"role:member\"\n",
        "policy.yaml",
    );
    let member = token("proj-a", &["member"]);
    assert_eq!(s.get(LIST, &member, "2.84").status, 200);
    assert_eq!(s.get(SHOW, &member, "2.84").status, 200);
    assert_eq!(
        s.get(LIST, &token("proj-a", &["reader"]), "2.84").status,
        403
    );
}

#[test]
fn the_policy_file_reloads_while_serving_and_a_bad_edit_keeps_the_rules() {
    let (s, dir) = with_policy(
        "\"os_compute_api:os-instance-actions:list\": \"!\"\n",
        "policy.yaml",
    );
    let reader = token("proj-a", &["reader"]);
    assert_eq!(s.get(LIST, &reader, "2.84").status, 403);
    let path = dir.0.join("policy.yaml");
    std::fs::write(
        &path,
        "\"os_compute_api:os-instance-actions:list\": \"@\"  # open it up\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.get(LIST, &reader, "2.84").status != 200 {
        assert!(
            Instant::now() < deadline,
            "the edited policy was never picked up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::write(
        &path,
        "\"os_compute_api:os-instance-actions:list\": \"role:reader or (\"\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        s.get(LIST, &reader, "2.84").status,
        200,
        "a broken edit keeps the previous rules"
    );
}

#[test]
fn a_malformed_policy_file_is_refused_at_start_naming_the_rule() {
    let dir = TempDir::new();
    let config = dir.0.join("c.toml");
    let policy = dir.0.join("policy.yaml");
    std::fs::write(&policy, "\"context_is_admin\": \"role:admin\"\n\"os_compute_api:os-instance-actions:show\": \"role:reader and\"\n").unwrap();
    std::fs::write(
        &config,
        format!("[policy]\nfile = {:?}\n", policy.display().to_string()),
    )
    .unwrap();
    let out = crate::cli::binary()
        .arg("--config")
        .arg(&config)
        .args(["serve"])
        .store(dir.0.join("s"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 2") && stderr.contains("os_compute_api:os-instance-actions:show"),
        "{stderr}"
    );
    let out = crate::cli::binary()
        .arg("--config")
        .arg(&config)
        .args(["policy", "sample"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
