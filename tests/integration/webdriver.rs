//! A small W3C WebDriver client for the browser test (`ui.rs`), over std's `TcpStream` and
//! serde_json (it reads answers by Content-Length: chromedriver keeps connections open, which
//! the suite's raw client, reading to the end, would wait on).
//!
//! Why not a crate: WebDriver is JSON over HTTP and the test needs a dozen commands; `fantoccini`
//! would add hyper, a TLS stack and their trees to a 2-core CI build for that, and Selenium from
//! PyPI would put a Python process between the test and the browser. This file is the whole
//! client, and each test line still reads as "find, click, read".

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::TempDir;

/// The key W3C WebDriver names element references with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// `NOVA_ACTIONS_CHROMIUM`, else Debian's path.
fn chromium() -> PathBuf {
    std::env::var_os("NOVA_ACTIONS_CHROMIUM").map_or(PathBuf::from(CHROMIUM), PathBuf::from)
}

/// `NOVA_ACTIONS_CHROMEDRIVER`, else Debian's path.
fn chromedriver() -> PathBuf {
    std::env::var_os("NOVA_ACTIONS_CHROMEDRIVER").map_or(PathBuf::from(CHROMEDRIVER), PathBuf::from)
}

/// Why the browser test cannot run here, if it cannot.
pub fn missing() -> Option<String> {
    [chromium(), chromedriver()]
        .into_iter()
        .find(|p| !p.exists())
        .map(|p| format!("{} is not installed", p.display()))
}

/// chromedriver on a free port, killed (with its browsers) when dropped.
pub struct Driver {
    child: Child,
    addr: SocketAddr,
    profile: TempDir,
}

impl Driver {
    pub fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let driver = Driver {
            child,
            addr,
            profile: TempDir::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(addr).is_ok() {
                let status = driver.call("GET", "/status", None);
                if status["value"]["ready"] == true {
                    return driver;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let raw = exchange(self.addr, method, path, body.as_bytes())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        serde_json::from_slice(&raw).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: not JSON ({e}): {}",
                String::from_utf8_lossy(&raw)
            )
        })
    }

    /// A new headless Chromium with a fresh profile, its browser log kept.
    pub fn session(&self) -> Session<'_> {
        let chromium = chromium();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1440,900",
            &format!("--user-data-dir={}", self.profile.0.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": path_text(&chromium), "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let answer = self.call("POST", "/session", Some(caps));
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        Session { driver: self, id }
    }
}

/// One request, and the body of its answer by `Content-Length`: chromedriver keeps the
/// connection open after answering, so reading to the end (as `common::send_raw` does) would wait.
fn exchange(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(length) = length {
                if raw.len() >= end + 4 + length {
                    return Ok(raw[end + 4..end + 4 + length].to_vec());
                }
            }
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            let end = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(0, |e| e + 4);
            return Ok(raw[end..].to_vec());
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Session<'d> {
    driver: &'d Driver,
    id: String,
}

#[derive(Clone, Debug)]
pub struct Element(String);

impl Session<'_> {
    fn cmd(&self, method: &str, tail: &str, body: Option<Value>) -> Value {
        let answer = self
            .driver
            .call(method, &format!("/session/{}{tail}", self.id), body);
        if let Some(error) = answer["value"].get("error") {
            panic!(
                "WebDriver {method} {tail}: {error}: {}",
                answer["value"]["message"]
            );
        }
        answer["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| Element(e[ELEMENT].as_str().unwrap().to_string()))
            .collect()
    }

    /// Waits (up to 15 s) for an element matching `css`.
    pub fn find(&self, css: &str) -> Element {
        self.wait_for(&format!("an element matching {css}"), || {
            self.find_all(css).into_iter().next()
        })
    }

    /// The element that has the focus.
    pub fn active(&self) -> Element {
        let e = self.cmd("GET", "/element/active", None);
        Element(e[ELEMENT].as_str().expect("an element").to_string())
    }

    pub fn text(&self, e: &Element) -> String {
        self.cmd("GET", &format!("/element/{}/text", e.0), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn click(&self, e: &Element) {
        self.cmd("POST", &format!("/element/{}/click", e.0), Some(json!({})));
    }

    pub fn type_into(&self, e: &Element, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        );
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns what it returns.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The layout viewport at exactly `width` × `height` CSS pixels (headless windows have a
    /// minimum width above a phone's).
    pub fn viewport(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            Some(
                json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}}),
            ),
        );
    }

    pub fn screenshot(&self, to: &Path) {
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64_decode(b64.as_str().expect("base64 text"));
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(to, png).unwrap();
    }

    /// Browser console entries since the last call (chromedriver's log endpoint).
    pub fn console(&self) -> Vec<Value> {
        self.cmd("POST", "/se/log", Some(json!({"type": "browser"})))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls `probe` until it gives something, for at most 15 s.
    pub fn wait_for<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(found) = probe() {
                return found;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self
            .driver
            .call("DELETE", &format!("/session/{}", self.id), None);
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc: u32 = 0;
        for (i, c) in chunk.iter().enumerate() {
            acc |= u32::from(value(*c)) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_decodes_padded_and_unpadded_text() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGVsbG8h"), b"hello!");
    assert_eq!(base64_decode("aA=="), b"h");
}
