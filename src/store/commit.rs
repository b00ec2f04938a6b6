//! Group commit: every acknowledged write must be on disk, but concurrent writers share one
//! flush + fdatasync instead of paying for one each.

use std::fs::File;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crate::metrics::Histogram;

#[derive(Default)]
struct State {
    /// Tickets handed out; a ticket is taken after its write is applied in memory.
    issued: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    flushing: bool,
}

pub struct GroupCommit {
    state: Mutex<State>,
    wake: Condvar,
    flushes: Mutex<Histogram>,
}

impl GroupCommit {
    pub fn new() -> Self {
        GroupCommit {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            flushes: Mutex::new(Histogram::default()),
        }
    }

    /// Returns once everything applied before the call is durable. One caller at a time runs
    /// `flush`; the others wait for it, and a flush that started after they arrived covers them.
    pub fn sync(&self, db: &sled::Db, data_file: &File) -> Result<(), sled::Error> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.issued += 1;
        let ticket = state.issued;
        loop {
            if state.durable >= ticket {
                return Ok(());
            }
            if !state.flushing {
                state.flushing = true;
                let covers = state.issued;
                drop(state);
                let started = Instant::now();
                let result = flush(db, data_file);
                self.flushes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .observe(started.elapsed());
                state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                state.flushing = false;
                if result.is_ok() {
                    state.durable = state.durable.max(covers);
                }
                self.wake.notify_all();
                result?;
                continue;
            }
            state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl GroupCommit {
    /// How long flushes took so far.
    pub fn flush_times(&self) -> Histogram {
        self.flushes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// sled's flush writes the log but does not fsync it on Linux (sled #1452), so a power cut could
/// still lose acknowledged writes without the explicit fdatasync.
fn flush(db: &sled::Db, data_file: &File) -> Result<(), sled::Error> {
    db.flush()?;
    data_file.sync_data()?;
    Ok(())
}
