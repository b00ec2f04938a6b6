//! A helper for another Rust project's integration tests: spawn `nova-actions serve
//! --ephemeral`, read its ready line, and stop it when the test ends. Copy `NovaActions` into
//! your tests; `main` shows it in use (`cargo run --example test_helper`, which `.ci/run` does).
//!
//! NOVA_ACTIONS_BIN names the binary (default: this repository's target/debug/nova-actions).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// A running service on a temporary store; stopped (and its store removed) on drop.
pub struct NovaActions {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl NovaActions {
    /// Starts the binary, seeded with `seed` (NDJSON) when given; returns once it accepts
    /// connections.
    pub fn start(binary: &str, seed: Option<&str>) -> std::io::Result<NovaActions> {
        let mut command = Command::new(binary);
        command.args(["serve", "--ephemeral", "--listen", "127.0.0.1:0"]);
        if let Some(seed) = seed {
            command.args(["--seed", seed]);
        }
        let mut child = command.stdout(Stdio::piped()).spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        let url = line
            .trim_end()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .ok_or_else(|| std::io::Error::other(format!("no ready line: {line:?}")))?
            .to_string();
        Ok(NovaActions { child, url })
    }

    /// The compute endpoint to give the client under test.
    pub fn compute_endpoint(&self) -> String {
        format!("{}/v2.1", self.url)
    }
}

impl Drop for NovaActions {
    fn drop(&mut self) {
        // SIGTERM: a graceful stop that removes the temporary store.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// A bare HTTP GET, so that the example needs no client crate.
fn get(url: &str, path: &str, token: &str) -> std::io::Result<String> {
    let host = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\n\
         OpenStack-API-Version: compute 2.84\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

fn main() -> std::io::Result<()> {
    let binary = std::env::var("NOVA_ACTIONS_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/debug/nova-actions").into()
    });
    let seed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/golden/fixture.ndjson"
    );
    let service = NovaActions::start(&binary, Some(seed))?;
    let answer = get(
        &service.url,
        "/v2.1/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions",
        "user-a:proj-a",
    )?;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"instanceActions\""), "{answer}");
    println!(
        "ok: {} answered the seeded history",
        service.compute_endpoint()
    );
    Ok(())
}
