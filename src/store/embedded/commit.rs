//! Group commit: every acknowledged write must be on disk, but concurrent writers share one
//! flush + fdatasync instead of paying for one each.
//!
//! A writer applies its transaction in memory, takes a ticket, and waits until a flush that
//! started after the ticket has finished. One flusher thread runs flushes back to back while
//! tickets are outstanding, so the group of a flush is everything applied during the previous
//! one. Waiting is possible both blocking (CLI, tests) and as a future (HTTP workers keep serving
//! while their writes wait), without a thread hop per write.
//!
//! A failed flush cannot be undone: the writes it covered are applied in memory, and sled 0.34
//! refuses every later write until the store is reopened. So the servers those writes touched
//! are marked unconfirmed: reading them answers "unavailable" instead of showing writes that
//! were never acknowledged, and the store reports itself broken until a restart reads back what
//! the disk really holds.

use std::collections::HashSet;
use std::fs::File;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use uuid::Uuid;

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
    /// Servers written in memory and not yet durable, with the first ticket that covers them.
    pending: Vec<(u64, Uuid)>,
    /// When `pending` is full (a huge import between flushes): the first ticket of the writes
    /// not listed there. If a failed flush covers it, every server counts as unconfirmed.
    unlisted: Option<u64>,
    /// Servers whose writes a failed flush covered: what memory holds for them may not be on
    /// disk, and it was not acknowledged.
    unconfirmed: HashSet<Uuid>,
    all_unconfirmed: bool,
}

/// Bounds the memory `pending` takes between two flushes.
const MAX_PENDING: usize = 1 << 16;

impl State {
    fn pend(&mut self, ticket: u64, server: Uuid) {
        if self.pending.last() == Some(&(ticket, server)) {
            return;
        }
        if self.pending.len() < MAX_PENDING {
            self.pending.push((ticket, server));
        } else {
            self.unlisted.get_or_insert(ticket);
        }
    }

    /// A flush up to `target` ended: its writes are durable, or unconfirmed for good.
    fn settle_pending(&mut self, target: u64, flushed: bool) {
        if !flushed {
            let covered: Vec<Uuid> = self
                .pending
                .iter()
                .filter(|(t, _)| *t <= target)
                .map(|(_, id)| *id)
                .collect();
            self.unconfirmed.extend(covered);
            self.all_unconfirmed |= self.unlisted.is_some_and(|t| t <= target);
        }
        self.pending.retain(|(t, _)| *t > target);
        if self.unlisted.is_some_and(|t| t <= target) {
            self.unlisted = None;
        }
    }
}

pub struct GroupCommit {
    state: Mutex<State>,
    /// The flusher waits here for tickets.
    work: Condvar,
    /// Blocking waiters wait here for flushes.
    done: Condvar,
    flushes: Mutex<Histogram>,
    /// Set once a flush has failed; lets readers skip the lock while all is well.
    broken: AtomicBool,
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
            broken: AtomicBool::new(false),
            flusher: Mutex::new(None),
        });
        let flusher = Arc::clone(&commit);
        let handle = std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || flusher.run(db, data_file))
            .expect("the group-commit thread starts");
        *commit
            .flusher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(handle);
        commit
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
                    state = self
                        .work
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
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
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .observe(started.elapsed());
            let waiters = {
                let mut state = self.lock();
                match result {
                    Ok(()) => state.durable = state.durable.max(target),
                    Err(e) => {
                        log::error!(
                            "flushing the store failed: {e}; writes are refused, and servers \
                             with unacknowledged writes answer 503, until the service is \
                             restarted (after fixing the disk)"
                        );
                        state.failed = Some((target, e.to_string()));
                        self.broken.store(true, Ordering::Release);
                    }
                }
                let flushed = state.durable >= target;
                state.settle_pending(target, flushed);
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
        self.issue(None)
    }

    /// A ticket for a write to `server` applied in memory (and everything before it).
    pub fn ticket_for(&self, server: Uuid) -> u64 {
        self.issue(Some(server))
    }

    fn issue(&self, server: Option<Uuid>) -> u64 {
        let mut state = self.lock();
        state.issued += 1;
        let ticket = state.issued;
        if let Some(server) = server {
            state.pend(ticket, server);
        }
        self.work.notify_one();
        ticket
    }

    /// Records that `server` was written in memory; the next ticket (of any writer) covers it.
    pub fn note(&self, server: Uuid) {
        let mut state = self.lock();
        let next = state.issued + 1;
        state.pend(next, server);
    }

    /// A ticket covering everything applied so far without asking for a flush of its own, for
    /// a write that changed nothing: its answer must not overtake the write it repeats.
    pub fn latest(&self) -> u64 {
        self.lock().issued
    }

    /// Whether a failed flush left `server` with writes that may not be on disk.
    pub fn is_unconfirmed(&self, server: &Uuid) -> bool {
        if !self.broken.load(Ordering::Acquire) {
            return false;
        }
        let state = self.lock();
        state.all_unconfirmed || state.unconfirmed.contains(server)
    }

    /// Why the store can no longer make writes durable, if a flush has failed.
    pub fn broken(&self) -> Option<String> {
        if !self.broken.load(Ordering::Acquire) {
            return None;
        }
        self.lock().failed.as_ref().map(|(_, why)| why.clone())
    }

    /// Blocks until `ticket` is durable.
    pub fn wait(&self, ticket: u64) -> Result<(), String> {
        let mut state = self.lock();
        loop {
            if let Some(result) = outcome(&state, ticket) {
                return result;
            }
            state = self
                .done
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
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

    /// Every ticket up to this one is durable.
    #[cfg(test)]
    pub fn durable_ticket(&self) -> u64 {
        self.lock().durable
    }

    /// How long flushes took so far.
    pub fn flush_times(&self) -> Histogram {
        self.flushes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Lets the flusher finish what is outstanding, and waits for it to exit.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.work.notify_all();
        if let Some(handle) = self
            .flusher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn a_failed_flush_leaves_exactly_the_servers_it_covered_unconfirmed() {
        let mut state = State::default();
        state.pend(1, id(1));
        state.pend(2, id(2));
        state.settle_pending(1, true);
        state.pend(3, id(3));
        state.settle_pending(2, false);
        assert_eq!(state.unconfirmed, HashSet::from([id(2)]));
        // Written after the failed flush started: unconfirmed only once its own flush fails.
        assert_eq!(state.pending, vec![(3, id(3))]);
        state.settle_pending(3, false);
        assert_eq!(state.unconfirmed, HashSet::from([id(2), id(3)]));
        assert!(!state.all_unconfirmed);
    }

    #[test]
    fn past_the_pending_bound_a_failed_flush_leaves_every_server_unconfirmed() {
        let mut state = State::default();
        for n in 0..MAX_PENDING as u64 + 10 {
            state.pend(n + 1, id(n as u128));
        }
        assert_eq!(state.pending.len(), MAX_PENDING);
        let mut flushed = State {
            pending: state.pending.clone(),
            unlisted: state.unlisted,
            ..State::default()
        };
        flushed.settle_pending(MAX_PENDING as u64 + 10, true);
        assert!(flushed.pending.is_empty() && flushed.unlisted.is_none());
        assert!(!flushed.all_unconfirmed);
        state.settle_pending(MAX_PENDING as u64 + 10, false);
        assert!(state.all_unconfirmed);
    }

    #[test]
    fn a_write_that_changed_nothing_waits_for_the_writes_before_it() {
        let dir = std::env::temp_dir().join(format!("commit-test-{}", std::process::id()));
        let db = sled::Config::new()
            .path(&dir)
            .temporary(true)
            .open()
            .unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let file = File::create(dir.join("sync-target")).unwrap();
        let commit = GroupCommit::start(db, file);
        assert_eq!(commit.latest(), 0);
        let first = commit.ticket_for(id(1));
        assert_eq!(commit.latest(), first);
        commit.wait(commit.latest()).unwrap();
        assert_eq!(commit.lock().durable, first);
        assert!(commit.lock().pending.is_empty());
        commit.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
