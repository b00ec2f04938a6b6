//! Durable write load: C clients, each recording event start + finish pairs over a kept-alive
//! connection to /ingest/v1, every answer acknowledged only after the group-commit flush.
//!
//!     cargo run --release --example write_load -- 127.0.0.1:8774 32 10
//!
//! Prints acknowledged event writes per second (each event start and each event finish counts as
//! one write; every client also starts a new action every five pairs, not counted).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SERVER: &str = "c0ffee00-0000-4000-8000-000000000001";
/// Event start + finish pairs per action (each action start is an extra, uncounted write).
const PAIRS_PER_ACTION: u64 = 5;

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        Conn {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    /// Sends one request and returns the status.
    fn call(&mut self, method: &str, path: &str, body: &str) -> u16 {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nX-Auth-Token: admin:admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.writer.write_all(head.as_bytes()).unwrap();
        self.writer.write_all(body.as_bytes()).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        status
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8774".into());
    let clients: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(32);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let mut setup = Conn::open(&addr);
    assert_eq!(
        setup.call(
            "PUT",
            &format!("/ingest/v1/servers/{SERVER}"),
            r#"{"project_id": "bench"}"#
        ),
        200
    );
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let (addr, stop, acked, failed) =
                (addr.clone(), stop.clone(), acked.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut conn = Conn::open(&addr);
                // Real actions have a handful of events: a new action every few pairs.
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let rid = format!("req-bench-{c}-{}", n / PAIRS_PER_ACTION);
                    if n % PAIRS_PER_ACTION == 0 {
                        let status = conn.call(
                            "POST",
                            &format!("/ingest/v1/servers/{SERVER}/actions"),
                            &format!(r#"{{"request_id": "{rid}", "action": "bench"}}"#),
                        );
                        assert!(status == 201 || status == 200, "action start: {status}");
                    }
                    let event = format!("e{}", n % PAIRS_PER_ACTION);
                    let base = format!("/ingest/v1/servers/{SERVER}/actions/{rid}/events");
                    for (path, body) in [
                        (
                            base.clone(),
                            format!(r#"{{"event": "{event}", "host": "h"}}"#),
                        ),
                        (
                            format!("{base}/{event}/finish"),
                            r#"{"result": "Success"}"#.to_string(),
                        ),
                    ] {
                        let status = conn.call("POST", &path, &body);
                        if (200..300).contains(&status) {
                            acked.fetch_add(1, Ordering::Relaxed);
                        } else {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    n += 1;
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for w in workers {
        let _ = w.join();
    }
    let acked = acked.load(Ordering::Relaxed);
    println!(
        "clients={clients} seconds={elapsed:.1} acked_writes={acked} failed={} writes_per_s={:.0}",
        failed.load(Ordering::Relaxed),
        acked as f64 / elapsed
    );
}
