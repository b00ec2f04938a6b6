//! Group commit: every acknowledged write must be on disk, but concurrent writers share one
//! flush + fdatasync instead of paying for one each.
//!
//! A writer applies its transaction in memory, takes a ticket, and waits until a flush that
//! started after the ticket has finished. One flusher thread runs flushes back to back while
//! tickets are outstanding, so the group of a flush is everything applied during the previous
//! one. Waiting is possible both blocking (CLI, tests) and as a future (HTTP workers keep serving
//! while their writes wait), without a thread hop per write.

use std::fs::File;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::metrics::Histogram;

#[derive(Default)]
struct State {
    /// Tickets handed out; a ticket is taken after its write is applied in memory.
    issued: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// A flush failed covering tickets up to this one (and later ones are not yet durable).
    failed: Option<(u64, String)>,
    waiters: Vec<(u64, Waker)>,
    stop: bool,
}

pub struct GroupCommit {
    state: Mutex<State>,
    /// The flusher waits here for tickets.
    work: Condvar,
    /// Blocking waiters wait here for flushes.
    done: Condvar,
    flushes: Mutex<Histogram>,
    /// Joined on stop: the thread holds a handle on the database, which must be closed before
    /// the store can be opened again in the same process.
    flusher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What a ticket's wait came to.
fn outcome(state: &State, ticket: u64) -> Option<Result<(), String>> {
    if state.durable >= ticket {
        return Some(Ok(()));
    }
    match &state.failed {
        Some((upto, why)) if *upto >= ticket => Some(Err(why.clone())),
        _ => None,
    }
}

impl GroupCommit {
    /// Starts the flusher thread for `db`, whose log is the file `data_file`.
    pub fn start(db: sled::Db, data_file: File) -> Arc<GroupCommit> {
        let commit = Arc::new(GroupCommit {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            flushes: Mutex::new(Histogram::default()),
            flusher: Mutex::new(None),
        });
        let flusher = Arc::clone(&commit);
        let handle = std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || flusher.run(db, data_file))
            .expect("the group-commit thread starts");
        *commit.flusher.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        commit
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self, db: sled::Db, data_file: File) {
        let (db, data_file) = (&db, &data_file);
        loop {
            let target = {
                let mut state = self.lock();
                // Settled: every ticket is durable or was already answered with a failed flush.
                // A failure is retried by the next write's ticket, not in a loop.
                let settled = |s: &State| {
                    s.issued == s.durable
                        || s.failed.as_ref().is_some_and(|(upto, _)| *upto >= s.issued)
                };
                while settled(&state) && !state.stop {
                    state = self.work.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                if settled(&state) {
                    return;
                }
                state.issued
            };
            let started = Instant::now();
            let result = flush(db, data_file);
            self.flushes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .observe(started.elapsed());
            let waiters = {
                let mut state = self.lock();
                match result {
                    Ok(()) => state.durable = state.durable.max(target),
                    Err(e) => {
                        log::error!("flushing the store failed: {e}");
                        state.failed = Some((target, e.to_string()));
                    }
                }
                let ready = |t: u64, s: &State| outcome(s, t).is_some();
                let (wake, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut state.waiters)
                    .into_iter()
                    .partition(|(t, _)| ready(*t, &state));
                state.waiters = keep;
                wake
            };
            self.done.notify_all();
            for (_, waker) in waiters {
                waker.wake();
            }
        }
    }

    /// A ticket for everything applied so far; the flusher will cover it.
    pub fn ticket(&self) -> u64 {
        let mut state = self.lock();
        state.issued += 1;
        self.work.notify_one();
        state.issued
    }

    /// Blocks until `ticket` is durable.
    pub fn wait(&self, ticket: u64) -> Result<(), String> {
        let mut state = self.lock();
        loop {
            if let Some(result) = outcome(&state, ticket) {
                return result;
            }
            state = self.done.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Resolves when `ticket` is durable.
    pub fn wait_async(self: &Arc<Self>, ticket: u64) -> Durable {
        Durable {
            commit: Arc::clone(self),
            ticket,
        }
    }

    /// Blocks until everything applied before the call is durable.
    pub fn sync(&self) -> Result<(), String> {
        let ticket = self.ticket();
        self.wait(ticket)
    }

    /// How long flushes took so far.
    pub fn flush_times(&self) -> Histogram {
        self.flushes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Lets the flusher finish what is outstanding, and waits for it to exit.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.work.notify_all();
        if let Some(handle) = self
            .flusher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = handle.join();
        }
    }
}

pub struct Durable {
    commit: Arc<GroupCommit>,
    ticket: u64,
}

impl Future for Durable {
    type Output = Result<(), String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.commit.lock();
        if let Some(result) = outcome(&state, self.ticket) {
            return Poll::Ready(result);
        }
        state.waiters.push((self.ticket, cx.waker().clone()));
        Poll::Pending
    }
}

/// sled's flush writes the log but does not fsync it on Linux (sled #1452), so a power cut could
/// still lose acknowledged writes without the explicit fdatasync.
fn flush(db: &sled::Db, data_file: &File) -> Result<(), sled::Error> {
    db.flush()?;
    data_file.sync_data()?;
    Ok(())
}
