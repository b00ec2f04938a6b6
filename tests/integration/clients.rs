//! The real OpenStack clients against the service, finding servers by name: python-openstackclient
//! (`openstack server event list/show NAME`), openstacksdk (`find_server` then `server_actions`)
//! and python-novaclient (`nova instance-action-list NAME`), configured the way
//! scripts/clients/README.md says (keystoneauth's `admin_token` plugin: a fixed noauth token and
//! the compute endpoint, no Keystone).
//!
//! Every expected output below is what the same client printed against a real Nova 34.0.0 holding
//! the same servers, actions and events (recorded by hand; see scripts/clients/README.md), with
//! the endpoint written `{endpoint}` and novaclient's random request id written `req-…`.
//!
//! The clients come from the virtualenv scripts/clients/setup.sh makes (found through
//! `NOVA_ACTIONS_CLIENTS_VENV`, else its default `$HOME/.cache/nova-actions/clients-venv`); without
//! it each test says it is skipped. One Python process per test runs all of that test's client
//! invocations (scripts/clients/batch.py forks one child per invocation after the clients'
//! imports, each calling the console script's own entry point); one test also runs the console
//! scripts themselves.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backend::say;
use crate::common::{ADMIN, TempDir, TestServer};

const WEB1: &str = "a1000000-0000-4000-8000-000000000001";
const WEB10: &str = "a1000000-0000-4000-8000-000000000002";
const DUP1: &str = "a1000000-0000-4000-8000-000000000003";
const DUP2: &str = "a1000000-0000-4000-8000-000000000004";
const SECRET_B: &str = "b1000000-0000-4000-8000-000000000001";
const WEB1_B: &str = "b1000000-0000-4000-8000-000000000002";
const WEB1_CREATE: &str = "req-a1000000-0000-4000-8000-000000000001";
const WEB1_REBOOT: &str = "req-a1000000-0000-4000-8000-000000000002";
const DUP1_CREATE: &str = "req-a3000000-0000-4000-8000-000000000001";
const SECRET_B_CREATE: &str = "req-b1000000-0000-4000-8000-000000000001";
const OWNER_A: &str = "user-a:proj-a";

/// How long one batch of client runs may take before the test gives up on it.
const BATCH_TIMEOUT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------- what the real Nova gave

/// `openstack server event list web-1 -f json` (and with the UUID), as the owner.
const OSC_LIST_WEB1: &str = r#"[
  {
    "Request ID": "req-a1000000-0000-4000-8000-000000000002",
    "Server ID": "a1000000-0000-4000-8000-000000000001",
    "Action": "reboot",
    "Start Time": "2024-01-02T00:00:00.000000"
  },
  {
    "Request ID": "req-a1000000-0000-4000-8000-000000000001",
    "Server ID": "a1000000-0000-4000-8000-000000000001",
    "Action": "create",
    "Start Time": "2024-01-01T00:00:01.000000"
  }
]
"#;

/// `openstack server event show web-1 req-…02 -f json` (and with the UUID), as the owner: no
/// traceback, host or details for the owner (default policy), hostId from the event's host.
const OSC_SHOW_WEB1_REBOOT: &str = r#"{
  "action": "reboot",
  "events": [
    {
      "details": null,
      "event": "compute_reboot_instance",
      "finish_time": "2024-01-02T00:00:05.000000",
      "host": null,
      "host_id": "6d2357770289fdc781ed1855bc55032417ce50cbf770ecc4fd4f1029",
      "result": "Error",
      "start_time": "2024-01-02T00:00:01.000000",
      "traceback": null
    }
  ],
  "id": "req-a1000000-0000-4000-8000-000000000002",
  "message": "Error",
  "project_id": "proj-a",
  "request_id": "req-a1000000-0000-4000-8000-000000000002",
  "start_time": "2024-01-02T00:00:00.000000",
  "user_id": "user-a"
}
"#;

/// `nova instance-action-list web-1` (and with the UUID), as the owner.
const NOVA_LIST_WEB1: &str = "\
+--------+------------------------------------------+---------+----------------------------+----------------------------+
| Action | Request_ID                               | Message | Start_Time                 | Updated_At                 |
+--------+------------------------------------------+---------+----------------------------+----------------------------+
| create | req-a1000000-0000-4000-8000-000000000001 | -       | 2024-01-01T00:00:01.000000 | 2024-01-01T00:00:09.000000 |
| reboot | req-a1000000-0000-4000-8000-000000000002 | Error   | 2024-01-02T00:00:00.000000 | 2024-01-02T00:00:05.000000 |
+--------+------------------------------------------+---------+----------------------------+----------------------------+
";

/// `nova instance-action web-1 req-…02` (and with the UUID), as the owner.
const NOVA_SHOW_WEB1_REBOOT: &str = "\
+---------------+-------------------------------------------------------------------------+
| Property      | Value                                                                   |
+---------------+-------------------------------------------------------------------------+
| action        | reboot                                                                  |
| events        | [{'event': 'compute_reboot_instance',                                   |
|               |   'finish_time': '2024-01-02T00:00:05.000000',                          |
|               |   'hostId': '6d2357770289fdc781ed1855bc55032417ce50cbf770ecc4fd4f1029', |
|               |   'result': 'Error',                                                    |
|               |   'start_time': '2024-01-02T00:00:01.000000'}]                          |
| instance_uuid | a1000000-0000-4000-8000-000000000001                                    |
| message       | Error                                                                   |
| project_id    | proj-a                                                                  |
| request_id    | req-a1000000-0000-4000-8000-000000000002                                |
| start_time    | 2024-01-02T00:00:00.000000                                              |
| updated_at    | 2024-01-02T00:00:05.000000                                              |
| user_id       | user-a                                                                  |
+---------------+-------------------------------------------------------------------------+
";

/// What novaclient prints on stderr before anything else, every time.
const NOVA_DEPRECATED: &str = "nova CLI is deprecated and will be removed in a future release\n";

/// openstacksdk `server_actions` of web-1 (`to_dict(computed=False)` of each, in order).
fn sdk_web1_actions() -> Value {
    json!({"rows": [
        {"action": "reboot", "events": null, "id": WEB1_REBOOT, "message": "Error", "name": null,
         "project_id": "proj-a", "request_id": WEB1_REBOOT,
         "start_time": "2024-01-02T00:00:00.000000", "user_id": "user-a"},
        {"action": "create", "events": null, "id": WEB1_CREATE, "message": null, "name": null,
         "project_id": "proj-a", "request_id": WEB1_CREATE,
         "start_time": "2024-01-01T00:00:01.000000", "user_id": "user-a"}
    ]})
}

/// openstacksdk `get_server_action(req-…02, web-1)`.
fn sdk_web1_reboot() -> Value {
    json!({"row": {
        "action": "reboot",
        "events": [{"details": null, "event": "compute_reboot_instance",
                    "finish_time": "2024-01-02T00:00:05.000000", "host": null,
                    "host_id": "6d2357770289fdc781ed1855bc55032417ce50cbf770ecc4fd4f1029",
                    "id": null, "location": null, "name": null, "result": "Error",
                    "start_time": "2024-01-02T00:00:01.000000", "traceback": null}],
        "id": WEB1_REBOOT, "message": "Error", "name": null, "project_id": "proj-a",
        "request_id": WEB1_REBOOT, "start_time": "2024-01-02T00:00:00.000000", "user_id": "user-a"
    }})
}

// ---------------------------------------------------------------- the tests

/// The issue's claim: by name, each client gives the owner the rows it gives by UUID, and those
/// are Nova's (a server of another project shares the name, and `web-10` matches Nova's regex
/// filter `name=web-1` too: the clients keep only the exact, visible match).
#[test]
fn by_name_each_client_gives_the_owner_the_rows_it_gives_by_uuid() {
    let Some(t) = Clients::start("by_name_each_client_gives_the_owner_the_rows_it_gives_by_uuid")
    else {
        return;
    };
    let out = t.batch(vec![
        (
            "osc list name",
            t.osc("owner-a", &["server", "event", "list", "web-1"]),
        ),
        (
            "osc list uuid",
            t.osc("owner-a", &["server", "event", "list", WEB1]),
        ),
        (
            "osc show name",
            t.osc(
                "owner-a",
                &["server", "event", "show", "web-1", WEB1_REBOOT],
            ),
        ),
        (
            "osc show uuid",
            t.osc("owner-a", &["server", "event", "show", WEB1, WEB1_REBOOT]),
        ),
        (
            "nova list name",
            t.nova(OWNER_A, &["instance-action-list", "web-1"]),
        ),
        (
            "nova list uuid",
            t.nova(OWNER_A, &["instance-action-list", WEB1]),
        ),
        (
            "nova show name",
            t.nova(OWNER_A, &["instance-action", "web-1", WEB1_REBOOT]),
        ),
        (
            "nova show uuid",
            t.nova(OWNER_A, &["instance-action", WEB1, WEB1_REBOOT]),
        ),
        (
            "sdk",
            t.sdk(vec![
                json!({"cloud": "owner-a", "call": "find_server", "server": "web-1",
                       "then": "server_actions"}),
                json!({"cloud": "owner-a", "call": "server_actions", "server": WEB1}),
                json!({"cloud": "owner-a", "call": "find_server", "server": "web-1",
                       "then": "get_server_action", "request_id": WEB1_REBOOT}),
                json!({"cloud": "owner-a", "call": "get_server_action", "server": WEB1,
                       "request_id": WEB1_REBOOT}),
            ]),
        ),
    ]);

    // The same rows by name as by UUID (parsed), and byte for byte what Nova's gave.
    for (by_name, by_uuid, nova) in [
        ("osc list name", "osc list uuid", OSC_LIST_WEB1),
        ("osc show name", "osc show uuid", OSC_SHOW_WEB1_REBOOT),
    ] {
        let (a, b) = (&out[by_name], &out[by_uuid]);
        a.expect_ok(by_name);
        b.expect_ok(by_uuid);
        assert_eq!(a.json(by_name), b.json(by_uuid), "{by_name} vs {by_uuid}");
        assert_eq!(a.stdout, nova, "{by_name}: not what Nova gave");
        assert_eq!(b.stdout, nova, "{by_uuid}: not what Nova gave");
    }
    for (by_name, by_uuid, nova) in [
        ("nova list name", "nova list uuid", NOVA_LIST_WEB1),
        ("nova show name", "nova show uuid", NOVA_SHOW_WEB1_REBOOT),
    ] {
        for name in [by_name, by_uuid] {
            let r = &out[name];
            assert_eq!(
                (r.exit, r.stderr.as_str()),
                (0, NOVA_DEPRECATED),
                "{name}: {r:?}"
            );
            assert_eq!(r.stdout, nova, "{name}: not what Nova gave");
        }
    }
    let sdk = out["sdk"].sdk_lines("sdk");
    assert_eq!(
        sdk[0], sdk[1],
        "find_server(web-1) + server_actions vs server_actions(UUID)"
    );
    assert_eq!(sdk[0], sdk_web1_actions());
    assert_eq!(
        sdk[2], sdk[3],
        "find_server(web-1) + get_server_action vs by UUID"
    );
    assert_eq!(sdk[2], sdk_web1_reboot());
}

/// A name two visible servers share: each client's own "more than one" error, as against Nova.
/// The owner's `dup` twice; for an admin asking across projects (SDK `all_projects=True`), the
/// owner's `web-1` and another project's.
#[test]
fn a_name_two_visible_servers_share_is_each_clients_more_than_one_error() {
    let Some(t) =
        Clients::start("a_name_two_visible_servers_share_is_each_clients_more_than_one_error")
    else {
        return;
    };
    let out = t.batch(vec![
        (
            "osc list",
            t.osc("owner-a", &["server", "event", "list", "dup"]),
        ),
        (
            "osc show",
            t.osc("owner-a", &["server", "event", "show", "dup", DUP1_CREATE]),
        ),
        (
            "nova list",
            t.nova(OWNER_A, &["instance-action-list", "dup"]),
        ),
        (
            "nova show",
            t.nova(OWNER_A, &["instance-action", "dup", DUP1_CREATE]),
        ),
        (
            "sdk",
            t.sdk(vec![
                json!({"cloud": "owner-a", "call": "find_server", "server": "dup"}),
                json!({"cloud": "admin", "call": "find_server", "server": "web-1",
                       "all_projects": true}),
            ]),
        ),
    ]);
    for name in ["osc list", "osc show"] {
        out[name].expect_error(name, "More than one Server exists with the name 'dup'.\n");
    }
    for name in ["nova list", "nova show"] {
        out[name].expect_error(
            name,
            &format!(
                "{NOVA_DEPRECATED}ERROR (CommandError): Multiple server matches found for 'dup', \
                 use an ID to be more specific.\n"
            ),
        );
    }
    assert_eq!(
        out["sdk"].sdk_lines("sdk"),
        vec![
            json!({"error": "DuplicateResource",
                   "message": "More than one Server exists with the name 'dup'."}),
            json!({"error": "DuplicateResource",
                   "message": "More than one Server exists with the name 'web-1'."}),
        ]
    );
}

/// An unknown name, and a name only another project's server has: each client's own "no server"
/// error, as against Nova (novaclient then tries the name as an id, so Nova's 404 for
/// `servers/NAME/os-instance-actions` is what it shows). Also: an admin without all projects does
/// not see the owner's `web-1`; the owner may not ask across projects (403); an admin across
/// projects finds the other project's server by name; another project's UUID is Nova's 404.
#[test]
fn an_unknown_or_invisible_name_is_each_clients_no_server_error() {
    let Some(t) = Clients::start("an_unknown_or_invisible_name_is_each_clients_no_server_error")
    else {
        return;
    };
    let out = t.batch(vec![
        (
            "osc list unknown",
            t.osc("owner-a", &["server", "event", "list", "nosuch"]),
        ),
        (
            "osc list other",
            t.osc("owner-a", &["server", "event", "list", "secret-b"]),
        ),
        (
            "osc show other",
            t.osc(
                "owner-a",
                &["server", "event", "show", "secret-b", SECRET_B_CREATE],
            ),
        ),
        (
            "osc list other uuid",
            t.osc("owner-a", &["server", "event", "list", SECRET_B]),
        ),
        (
            "osc admin list",
            t.osc("admin", &["server", "event", "list", "web-1"]),
        ),
        (
            "nova list unknown",
            t.nova(OWNER_A, &["instance-action-list", "nosuch"]),
        ),
        (
            "nova list other",
            t.nova(OWNER_A, &["instance-action-list", "secret-b"]),
        ),
        (
            "nova show other",
            t.nova(OWNER_A, &["instance-action", "secret-b", SECRET_B_CREATE]),
        ),
        (
            "nova list other uuid",
            t.nova(OWNER_A, &["instance-action-list", SECRET_B]),
        ),
        (
            "sdk",
            t.sdk(vec![
                json!({"cloud": "owner-a", "call": "find_server", "server": "nosuch"}),
                json!({"cloud": "owner-a", "call": "find_server", "server": "secret-b"}),
                json!({"cloud": "admin", "call": "find_server", "server": "web-1"}),
                json!({"cloud": "owner-a", "call": "find_server", "server": "web-1",
                       "all_projects": true}),
                json!({"cloud": "admin", "call": "find_server", "server": "secret-b",
                       "all_projects": true, "then": "server_actions"}),
            ]),
        ),
    ]);
    out["osc list unknown"].expect_error("osc list unknown", "No Server found for nosuch\n");
    out["osc list other"].expect_error("osc list other", "No Server found for secret-b\n");
    out["osc show other"].expect_error("osc show other", "No Server found for secret-b\n");
    out["osc admin list"].expect_error("osc admin list", "No Server found for web-1\n");
    out["osc list other uuid"].expect_error(
        "osc list other uuid",
        &format!(
            "NotFoundException: 404: Client Error for url: {{endpoint}}/servers/{SECRET_B}/\
             os-instance-actions, Instance {SECRET_B} could not be found.\n"
        ),
    );
    for (name, what) in [
        ("nova list unknown", "nosuch"),
        ("nova list other", "secret-b"),
        ("nova show other", "secret-b"),
        ("nova list other uuid", SECRET_B),
    ] {
        out[name].expect_error(
            name,
            &format!(
                "{NOVA_DEPRECATED}ERROR (NotFound): Instance {what} could not be found. \
                 (HTTP 404) (Request-ID: req-…)\n"
            ),
        );
    }
    assert_eq!(
        out["sdk"].sdk_lines("sdk"),
        vec![
            json!({"error": "NotFoundException", "message": "No Server found for nosuch"}),
            json!({"error": "NotFoundException", "message": "No Server found for secret-b"}),
            json!({"error": "NotFoundException", "message": "No Server found for web-1"}),
            json!({"error": "ForbiddenException",
                   "message": "ForbiddenException: 403: Client Error for url: {endpoint}/servers/\
                               detail?name=web-1&all_tenants=True, Policy doesn't allow \
                               os_compute_api:servers:detail:get_all_tenants to be performed."}),
            json!({"rows": [{"action": "create", "events": null, "id": SECRET_B_CREATE,
                             "message": null, "name": null, "project_id": "proj-b",
                             "request_id": SECRET_B_CREATE,
                             "start_time": "2024-01-01T00:04:01.000000", "user_id": "user-b"}]}),
        ]
    );
}

/// The console scripts themselves (not batch.py's forks of their entry points), by name.
#[test]
fn the_console_scripts_themselves_find_a_server_by_name() {
    let Some(t) = Clients::start("the_console_scripts_themselves_find_a_server_by_name") else {
        return;
    };
    let osc = t.console(
        "openstack",
        &["server", "event", "list", "web-1", "-f", "json"],
        &t.osc_env("owner-a"),
    );
    osc.expect_ok("openstack server event list web-1");
    assert_eq!(osc.stdout, OSC_LIST_WEB1);
    let nova = t.console(
        "nova",
        &["instance-action-list", "web-1"],
        &t.nova_env(OWNER_A),
    );
    assert_eq!(
        (nova.exit, nova.stderr.as_str()),
        (0, NOVA_DEPRECATED),
        "{nova:?}"
    );
    assert_eq!(nova.stdout, NOVA_LIST_WEB1);
}

// ---------------------------------------------------------------- the harness

/// A running service seeded with the servers above, a clouds.yaml pointing at it, and the venv.
struct Clients {
    _server: TestServer,
    venv: PathBuf,
    endpoint: String,
    clouds_yaml: PathBuf,
    _dir: TempDir,
}

/// What one client invocation did: exit status and output, the endpoint written `{endpoint}` and
/// novaclient's request ids `req-…`.
#[derive(Debug)]
struct Outcome {
    exit: i64,
    stdout: String,
    stderr: String,
}

/// The virtualenv scripts/clients/setup.sh makes, if it is there.
fn clients_venv() -> Result<PathBuf, String> {
    let venv = match std::env::var_os("NOVA_ACTIONS_CLIENTS_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(".cache/nova-actions/clients-venv"),
            None => return Err("no NOVA_ACTIONS_CLIENTS_VENV and no HOME".into()),
        },
    };
    for bin in ["python", "openstack", "nova"] {
        if !venv.join("bin").join(bin).is_file() {
            return Err(format!("no {}", venv.join("bin").join(bin).display()));
        }
    }
    Ok(venv)
}

impl Clients {
    fn start(test: &str) -> Option<Clients> {
        let venv = match clients_venv() {
            Ok(v) => v,
            Err(why) => {
                say(&format!(
                    "SKIPPED {test}: the OpenStack clients are not installed ({why}); \
                     `export NOVA_ACTIONS_CLIENTS_VENV=$(bash scripts/clients/setup.sh)` \
                     installs them, as .ci/run does"
                ));
                return None;
            }
        };
        let server = TestServer::start();
        seed(&server);
        let dir = TempDir::new();
        let endpoint = format!("http://{}/v2.1", server.addr);
        let clouds_yaml = dir.0.join("clouds.yaml");
        // The configuration scripts/clients/README.md gives, once per token.
        let mut yaml = String::from("clouds:\n");
        for (cloud, token) in [("owner-a", OWNER_A), ("admin", ADMIN)] {
            yaml.push_str(&format!(
                "  {cloud}:\n    auth_type: admin_token\n    auth:\n      endpoint: {endpoint}\n      \
                 token: \"{token}\"\n"
            ));
        }
        std::fs::write(&clouds_yaml, yaml).unwrap();
        Some(Clients {
            _server: server,
            venv,
            endpoint,
            clouds_yaml,
            _dir: dir,
        })
    }

    fn osc_env(&self, cloud: &str) -> Vec<(String, String)> {
        vec![
            (
                "OS_CLIENT_CONFIG_FILE".into(),
                self.clouds_yaml.display().to_string(),
            ),
            ("OS_CLOUD".into(), cloud.into()),
        ]
    }

    /// novaclient reads no clouds.yaml: the admin_token plugin from the environment, plus the
    /// project and auth URL its shell insists on (unused with this plugin).
    fn nova_env(&self, token: &str) -> Vec<(String, String)> {
        [
            ("OS_AUTH_TYPE", "admin_token"),
            ("OS_ENDPOINT", self.endpoint.as_str()),
            ("OS_TOKEN", token),
            ("OS_PROJECT_ID", "unused"),
            ("OS_AUTH_URL", "unused"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// `openstack ARGS -f json` with the clouds.yaml's `cloud`.
    fn osc(&self, cloud: &str, args: &[&str]) -> Value {
        let mut argv: Vec<&str> = args.to_vec();
        argv.extend(["-f", "json"]);
        json!({"tool": "openstack", "argv": argv, "env": env_object(&self.osc_env(cloud))})
    }

    fn nova(&self, token: &str, args: &[&str]) -> Value {
        json!({"tool": "nova", "argv": args, "env": env_object(&self.nova_env(token))})
    }

    /// openstacksdk calls, one child for all of them (see batch.py for the call forms).
    fn sdk(&self, calls: Vec<Value>) -> Value {
        json!({"tool": "sdk", "argv": calls,
               "env": {"OS_CLIENT_CONFIG_FILE": self.clouds_yaml.display().to_string()}})
    }

    /// Runs the named invocations through scripts/clients/batch.py (one Python process).
    fn batch(&self, runs: Vec<(&str, Value)>) -> HashMap<String, Outcome> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/clients/batch.py");
        let input = Value::Array(runs.iter().map(|(_, r)| r.clone()).collect()).to_string();
        let (exit, stdout, stderr) = run(
            self.command(&self.venv.join("bin/python")).arg(&script),
            input.as_bytes(),
        );
        assert_eq!(exit, 0, "batch.py failed: {stderr}\n{stdout}");
        let results: Vec<Value> = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("batch.py output is not JSON ({e}): {stdout}\n{stderr}"));
        assert_eq!(results.len(), runs.len());
        runs.iter()
            .zip(results)
            .map(|((name, _), r)| {
                let text = |k: &str| self.normalize(r[k].as_str().unwrap_or_default());
                let outcome = Outcome {
                    exit: r["exit"].as_i64().unwrap(),
                    stdout: text("stdout"),
                    stderr: text("stderr"),
                };
                (name.to_string(), outcome)
            })
            .collect()
    }

    /// The venv's console script `bin/NAME ARGS` as a process of its own.
    fn console(&self, name: &str, args: &[&str], env: &[(String, String)]) -> Outcome {
        let mut command = self.command(&self.venv.join("bin").join(name));
        command.args(args).envs(env.iter().cloned());
        let (exit, stdout, stderr) = run(&mut command, b"");
        Outcome {
            exit,
            stdout: self.normalize(&stdout),
            stderr: self.normalize(&stderr),
        }
    }

    /// A command with none of the caller's OpenStack settings (OS_*, NOVA*, clouds.yaml lookups
    /// in the caller's home still lose to OS_CLIENT_CONFIG_FILE).
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        for (key, _) in std::env::vars_os() {
            let key_text = key.to_string_lossy();
            if key_text.starts_with("OS_") || key_text.starts_with("NOVA") {
                command.env_remove(&key);
            }
        }
        command.env("PYTHONDONTWRITEBYTECODE", "1");
        command
    }

    fn normalize(&self, text: &str) -> String {
        let text = text.replace(&self.endpoint, "{endpoint}");
        // novaclient's "(Request-ID: req-<uuid>)": the id is random; check its form, drop it.
        let marker = "(Request-ID: req-";
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(marker) {
            let (head, tail) = rest.split_at(at + marker.len());
            let id = tail.get(..36).unwrap_or(tail);
            assert!(
                uuid::Uuid::parse_str(id).is_ok() && tail[36..].starts_with(')'),
                "request id of the form req-<uuid> in {text}"
            );
            out.push_str(head);
            out.push('…');
            rest = &tail[36..];
        }
        out.push_str(rest);
        out
    }
}

impl Outcome {
    fn expect_ok(&self, what: &str) {
        assert_eq!(self.exit, 0, "{what}: {self:?}");
        assert_eq!(self.stderr, "", "{what}: {self:?}");
    }

    fn expect_error(&self, what: &str, stderr: &str) {
        assert_eq!(
            (self.exit, self.stdout.as_str(), self.stderr.as_str()),
            (1, "", stderr),
            "{what}: not the error the client printed against Nova"
        );
    }

    fn json(&self, what: &str) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {self:?}"))
    }

    /// batch.py's sdk child: one JSON value per call.
    fn sdk_lines(&self, what: &str) -> Vec<Value> {
        assert_eq!(
            (self.exit, self.stderr.as_str()),
            (0, ""),
            "{what}: {self:?}"
        );
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: {e}: {l}")))
            .collect()
    }
}

fn env_object(env: &[(String, String)]) -> Value {
    Value::Object(
        env.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Runs `command` with `input` on stdin; (exit code, stdout, stderr). Killed past BATCH_TIMEOUT.
fn run(command: &mut Command, input: &[u8]) -> (i64, String, String) {
    let mut child: Child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out_pipe.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err_pipe.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + BATCH_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} still running after {BATCH_TIMEOUT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
    (status.code().map_or(-1, i64::from), stdout, stderr)
}

/// The servers, actions and events the real Nova held when the expectations were recorded
/// (scripts/clients/README.md has the same data as `seed.py batch` lines for Nova).
fn seed(server: &TestServer) {
    let ok = |method: &str, path: String, body: Value| {
        let r = server.write(method, &path, ADMIN, &body.to_string());
        assert!(
            r.status == 200 || r.status == 201,
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
    };
    let servers = [
        (
            WEB1,
            "proj-a",
            "user-a",
            "web-1",
            "compute-1",
            "2024-01-01T00:00:00Z",
        ),
        (
            WEB10,
            "proj-a",
            "user-a",
            "web-10",
            "compute-1",
            "2024-01-01T00:01:00Z",
        ),
        (
            DUP1,
            "proj-a",
            "user-a",
            "dup",
            "compute-1",
            "2024-01-01T00:02:00Z",
        ),
        (
            DUP2,
            "proj-a",
            "user-a",
            "dup",
            "compute-2",
            "2024-01-01T00:03:00Z",
        ),
        (
            SECRET_B,
            "proj-b",
            "user-b",
            "secret-b",
            "compute-2",
            "2024-01-01T00:04:00Z",
        ),
        (
            WEB1_B,
            "proj-b",
            "user-b",
            "web-1",
            "compute-2",
            "2024-01-01T00:05:00Z",
        ),
    ];
    let creates = [
        (WEB1, WEB1_CREATE, "2024-01-01T00:00:01Z"),
        (
            WEB10,
            "req-a2000000-0000-4000-8000-000000000001",
            "2024-01-01T00:01:01Z",
        ),
        (DUP1, DUP1_CREATE, "2024-01-01T00:02:01Z"),
        (
            DUP2,
            "req-a4000000-0000-4000-8000-000000000001",
            "2024-01-01T00:03:01Z",
        ),
        (SECRET_B, SECRET_B_CREATE, "2024-01-01T00:04:01Z"),
        (
            WEB1_B,
            "req-b2000000-0000-4000-8000-000000000001",
            "2024-01-01T00:05:01Z",
        ),
    ];
    for (id, project, user, name, host, created) in servers {
        ok(
            "PUT",
            format!("servers/{id}"),
            json!({"project_id": project, "user_id": user, "name": name, "status": "ACTIVE",
                   "host": host, "created_at": created}),
        );
    }
    for (id, request_id, start) in creates {
        let (project, user) = if id.starts_with('a') {
            ("proj-a", "user-a")
        } else {
            ("proj-b", "user-b")
        };
        ok(
            "POST",
            format!("servers/{id}/actions"),
            json!({"request_id": request_id, "action": "create", "user_id": user,
                   "project_id": project, "start_time": start}),
        );
    }
    // web-1's create: one event, Success; then a reboot whose event failed.
    let build = "compute__do_build_and_run_instance";
    ok(
        "POST",
        format!("servers/{WEB1}/actions/{WEB1_CREATE}/events"),
        json!({"event": build, "host": "compute-1", "start_time": "2024-01-01T00:00:02Z"}),
    );
    ok(
        "POST",
        format!("servers/{WEB1}/actions/{WEB1_CREATE}/events/{build}/finish"),
        json!({"result": "Success", "finish_time": "2024-01-01T00:00:09Z"}),
    );
    ok(
        "POST",
        format!("servers/{WEB1}/actions"),
        json!({"request_id": WEB1_REBOOT, "action": "reboot", "user_id": "user-a",
               "project_id": "proj-a", "start_time": "2024-01-02T00:00:00Z"}),
    );
    let reboot = "compute_reboot_instance";
    ok(
        "POST",
        format!("servers/{WEB1}/actions/{WEB1_REBOOT}/events"),
        json!({"event": reboot, "host": "compute-1", "start_time": "2024-01-02T00:00:01Z"}),
    );
    ok(
        "POST",
        format!("servers/{WEB1}/actions/{WEB1_REBOOT}/events/{reboot}/finish"),
        json!({"result": "Error", "details": "the host said no",
               "traceback": "Traceback (most recent call last): boom",
               "finish_time": "2024-01-02T00:00:05Z"}),
    );
}
