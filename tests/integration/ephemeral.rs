//! `serve --ephemeral [--seed FILE] --listen 127.0.0.1:0`: the one-line start other projects'
//! tests use. The ready line is the only thing on standard output, the store goes away at exit
//! (after one signal or two), and a bad seed fails the start with its line.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::cli::binary;
use crate::common::{ADMIN, TempDir, fixtures_dir, get_at};

/// A service started as a harness would: TMPDIR is the test's, so what it leaves is seen.
struct Started {
    child: Child,
    addr: SocketAddr,
    stdout: BufReader<std::process::ChildStdout>,
}

fn start(tmp: &Path, extra: &[&str]) -> Started {
    let mut child = binary()
        .args(["serve", "--ephemeral", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("TMPDIR", tmp)
        // The default backend whatever the suite runs on: --ephemeral is the embedded store.
        .env_remove("NOVA_ACTIONS__STORAGE__BACKEND")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .strip_prefix("nova-actions listening on http://")
        .unwrap_or_else(|| panic!("not the ready line: {line:?}"))
        .trim_end_matches('\n');
    Started {
        child,
        addr: url.parse().unwrap(),
        stdout,
    }
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

fn leftovers(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn the_ready_line_is_all_of_stdout_and_the_store_goes_at_exit() {
    let tmp = TempDir::new();
    let seed = fixtures_dir().join("golden/fixture.ndjson");
    let mut s = start(&tmp.0, &["--seed", seed.to_str().unwrap()]);
    assert_eq!(
        leftovers(&tmp.0).len(),
        1,
        "one temporary store while it runs"
    );
    // Seeded before the port opened: the first request already sees it.
    let r = get_at(
        s.addr,
        "/v2.1/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions",
        ADMIN,
        "2.84",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.json()["instanceActions"].as_array().unwrap().is_empty());
    signal(&s.child, "TERM");
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    s.stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "stdout after the ready line");
    assert!(leftovers(&tmp.0).is_empty(), "{:?}", leftovers(&tmp.0));
}

#[test]
fn two_interrupts_exit_at_once_and_still_remove_the_store() {
    let tmp = TempDir::new();
    let mut s = start(&tmp.0, &[]);
    // A request in flight keeps the first interrupt draining, so the second one decides.
    let slow = std::thread::spawn({
        let addr = s.addr;
        move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            use std::io::Write;
            let _ = stream.write_all(
                b"POST /ingest/v1/import HTTP/1.1\r\nHost: x\r\nX-Auth-Token: admin:admin\r\nContent-Length: 100\r\n\r\n",
            );
            std::thread::sleep(std::time::Duration::from_secs(2));
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    signal(&s.child, "INT");
    std::thread::sleep(std::time::Duration::from_millis(200));
    signal(&s.child, "INT");
    let status = s.child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status}");
    assert!(leftovers(&tmp.0).is_empty(), "{:?}", leftovers(&tmp.0));
    slow.join().unwrap();
}

#[test]
fn a_bad_seed_fails_the_start_with_its_line_and_leaves_nothing() {
    let tmp = TempDir::new();
    let seed = tmp.0.join("seed.ndjson");
    let good = std::fs::read_to_string(fixtures_dir().join("golden/fixture.ndjson")).unwrap();
    let first = good.lines().next().unwrap();
    std::fs::write(&seed, format!("{first}\n{{\"uuid\": \"not-a-uuid\"}}\n")).unwrap();
    let out = binary()
        .args(["serve", "--ephemeral", "--listen", "127.0.0.1:0", "--seed"])
        .arg(&seed)
        .env("TMPDIR", &tmp.0)
        .env_remove("NOVA_ACTIONS__STORAGE__BACKEND")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(out.stdout.is_empty(), "no ready line for a failed start");
    assert_eq!(leftovers(&tmp.0), ["seed.ndjson"]);
}

#[test]
fn ephemeral_and_a_data_dir_do_not_mix() {
    let out = binary()
        .args(["serve", "--ephemeral", "--data-dir", "/tmp/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--data-dir"));
}
