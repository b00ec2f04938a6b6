//! Durable write load: C clients, each recording event start + finish pairs over a kept-alive
//! connection to /ingest/v1, every answer acknowledged only after the group-commit flush.
//!
//!     cargo run --release --example write_load -- 127.0.0.1:8774 32 10
//!
//! Prints acknowledged event writes per second (each event start and each event finish counts as
//! one write; every client also starts a new action every five pairs, not counted).

#[path = "support/http.rs"]
mod http;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::Conn;

const SERVER: &str = "c0ffee00-0000-4000-8000-000000000001";
/// Event start + finish pairs per action (each action start is an extra, uncounted write).
const PAIRS_PER_ACTION: u64 = 5;

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8774".into());
    let clients: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(32);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let mut setup = Conn::open(&addr, "admin:admin").expect("connect");
    assert_eq!(
        setup
            .call(
                "PUT",
                &format!("/ingest/v1/servers/{SERVER}"),
                r#"{"project_id": "bench"}"#
            )
            .expect("register the server")
            .status,
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
                let mut conn = Conn::open(&addr, "admin:admin").expect("connect");
                // Real actions have a handful of events: a new action every few pairs.
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let rid = format!("req-bench-{c}-{}", n / PAIRS_PER_ACTION);
                    if n % PAIRS_PER_ACTION == 0 {
                        let status = conn
                            .call(
                                "POST",
                                &format!("/ingest/v1/servers/{SERVER}/actions"),
                                &format!(r#"{{"request_id": "{rid}", "action": "bench"}}"#),
                            )
                            .expect("action start")
                            .status;
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
                        let status = conn.call("POST", &path, &body).expect("event write").status;
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
