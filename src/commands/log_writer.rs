//! Standard error for the service's log, written in batches.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

/// Log lines (one access line per request) gathered in memory and written to standard error
/// ten times a second: a write and a flush per line cost the service ~40% of its read
/// throughput (BENCHMARKS.md). The price: a crash can lose the last tenth of a second of log.
#[derive(Clone)]
pub struct BatchedStderr(Arc<std::sync::Mutex<Vec<u8>>>);

impl BatchedStderr {
    pub fn start() -> BatchedStderr {
        let log = BatchedStderr(Arc::new(std::sync::Mutex::new(Vec::with_capacity(1 << 16))));
        let flusher = log.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(100));
                    flusher.flush_now();
                }
            })
            .expect("the log writer starts");
        log
    }

    pub fn flush_now(&self) {
        let pending = std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if !pending.is_empty() {
            let _ = io::stderr().lock().write_all(&pending);
        }
    }
}

impl Write for BatchedStderr {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut buffer = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buffer.extend_from_slice(bytes);
        // A burst bigger than this goes out at once rather than piling up.
        if buffer.len() > 1 << 20 {
            let _ = io::stderr().lock().write_all(&std::mem::take(&mut *buffer));
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
