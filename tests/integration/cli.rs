//! The binary as a user runs it: import/export on a stopped store, serve, and a kill -9 that
//! must not lose an acknowledged write.

use crate::backend::StoreArg;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{ADMIN, TempDir, fixtures_dir, send_raw};

pub fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nova-actions"));
    cmd.env("RUST_LOG", "warn");
    cmd
}

#[test]
fn import_then_export_round_trips_the_fixture_byte_for_byte() {
    let dir = TempDir::new();
    let store = dir.0.join("store");
    let fixture = fixtures_dir().join("golden/fixture.ndjson");
    for _ in 0..2 {
        let out = binary()
            .arg("import")
            .store(&store)
            .arg(&fixture)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = binary().arg("export").store(&store).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(&fixture).unwrap()
    );
}

#[test]
fn a_bad_line_fails_with_its_number_and_keeps_the_lines_before() {
    let dir = TempDir::new();
    let store = dir.0.join("store");
    let file = dir.0.join("bad.ndjson");
    let good = r#"{"uuid":"e0000000-0000-4000-8000-000000000001","project_id":"p","actions":[]}"#;
    let bad = r#"{"uuid":"e0000000-0000-4000-8000-000000000002","project_id":7}"#;
    std::fs::write(&file, format!("{good}\n{bad}\n")).unwrap();
    let out = binary()
        .arg("import")
        .store(&store)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "a bad line exits 3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 2: Invalid input for field/attribute project_id"),
        "{stderr}"
    );
    let out = binary().arg("export").store(&store).output().unwrap();
    let exported = String::from_utf8(out.stdout).unwrap();
    assert_eq!(exported.lines().count(), 1);
    assert!(exported.contains("e0000000-0000-4000-8000-000000000001"));
}

#[test]
fn a_bad_config_file_is_refused_with_the_key() {
    let dir = TempDir::new();
    let config = dir.0.join("c.toml");
    std::fs::write(&config, "[api]\nmax_limitt = 3\n").unwrap();
    let out = binary()
        .arg("--config")
        .arg(&config)
        .arg("export")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "configuration errors exit 2");
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_limitt"));
    let out = binary()
        .arg("--config")
        .arg(dir.0.join("missing.toml"))
        .arg("export")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an explicitly named config must exist"
    );
    let out = binary().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(store: &std::path::Path) -> Served {
    serve_with(store, |_| ())
}

/// Starts `serve` on a free port, after `adjust` has set its environment or output.
pub fn serve_with(store: &std::path::Path, adjust: impl FnOnce(&mut Command)) -> Served {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut command = binary();
    command
        .args(["serve", "--listen", &addr.to_string()])
        .store(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    adjust(&mut command);
    let child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Served { child, addr }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = TempDir::new();
    let store = dir.0.join("store");
    let sid = "a1000000-0000-4000-8000-000000000001";
    let json = [
        ("X-Auth-Token", ADMIN),
        ("Content-Type", "application/json"),
    ];
    let mut acknowledged = Vec::new();
    for round in 0..3 {
        let served = serve(&store);
        let put = send_raw(
            served.addr,
            "PUT",
            format!("/ingest/v1/servers/{sid}").as_bytes(),
            &json,
            br#"{"project_id": "p"}"#,
        );
        assert_eq!(put.status, 200);
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let addr = served.addr;
                std::thread::spawn(move || {
                    let mut ok = Vec::new();
                    for i in 0..10 {
                        let rid = format!("req-{round}-{w}-{i}");
                        let body = format!(r#"{{"request_id": "{rid}", "action": "reboot"}}"#);
                        let r = send_raw(
                            addr,
                            "POST",
                            format!("/ingest/v1/servers/{sid}/actions").as_bytes(),
                            &json,
                            body.as_bytes(),
                        );
                        if r.status == 201 {
                            ok.push(rid);
                        }
                    }
                    ok
                })
            })
            .collect();
        for w in writers {
            acknowledged.extend(w.join().unwrap());
        }
        drop(served); // SIGKILL: no graceful shutdown, no final flush
    }
    assert_eq!(acknowledged.len(), 120);
    let served = serve(&store);
    let path = format!("/v2.1/servers/{sid}/os-instance-actions");
    let r = send_raw(
        served.addr,
        "GET",
        path.as_bytes(),
        &[("X-Auth-Token", ADMIN)],
        b"",
    );
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let mut stored: Vec<String> = body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["request_id"].as_str().unwrap().to_string())
        .collect();
    stored.sort();
    acknowledged.sort();
    assert_eq!(stored, acknowledged);
}
