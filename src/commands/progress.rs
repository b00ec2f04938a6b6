//! Progress of a long command (import, generate) on standard error.

use std::io::{self, IsTerminal, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::store::ImportCounts;

/// Counts the bytes read through it, so progress can say how far into the file it is.
pub struct Counting<R> {
    pub inner: R,
    pub read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Progress on standard error: a redrawn line with rate and ETA on a terminal, a plain line
/// every ten seconds otherwise (logs, CI).
pub struct Progress {
    pub started: Instant,
    last: Instant,
    terminal: bool,
    total_bytes: Option<u64>,
}

impl Progress {
    pub fn new(total_bytes: Option<u64>) -> Progress {
        let now = Instant::now();
        Progress {
            started: now,
            last: now,
            terminal: io::stderr().is_terminal(),
            total_bytes,
        }
    }

    pub fn update(&mut self, bytes: u64, counts: &ImportCounts) {
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = counts.actions as f64 / secs;
        let position = match self.total_bytes {
            Some(total) if total > 0 => {
                let fraction = bytes as f64 / total as f64;
                let eta = if fraction > 0.0 {
                    secs / fraction - secs
                } else {
                    0.0
                };
                format!("{:5.1}% ETA {:.0}s, ", fraction * 100.0, eta.max(0.0))
            }
            _ => String::new(),
        };
        let line = format!(
            "{position}{} servers, {} actions ({rate:.0} actions/s)",
            counts.servers, counts.actions
        );
        if self.terminal {
            eprint!("\r{line}    ");
        } else {
            eprintln!("import: {line}");
        }
    }

    pub fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}
