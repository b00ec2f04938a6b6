//! Group commit: every acknowledged write must be on disk, but concurrent writers share one
//! flush + fdatasync instead of paying for one each.
//!
//! A writer applies its transaction in memory and appends it to the write-ahead log (`wal`); its
//! ticket is the record's LSN, durable once the flusher thread has written and fdatasync'ed the
//! log past it. The flusher writes back to back while tickets are outstanding, so the group of a
//! write is everything appended during the previous one, and checkpoints sled behind the log
//! once a second. Waiting is possible both blocking (CLI, tests) and as a future (HTTP workers
//! keep serving while their writes wait), without a thread hop per write.
//!
//! A failed write cannot be undone: the writes it covered are applied in memory. So nothing more
//! is written (the log's tail is unknown, and a later fsync may succeed after the kernel dropped
//! what an earlier one failed to write), and the servers those writes touched are marked
//! unconfirmed: reading them answers "unavailable" instead of showing writes that were never
//! acknowledged, and the store reports itself broken until a restart reads back what the disk
//! really holds.

use std::collections::HashSet;
use std::fs::File;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::wal::{Segment, Wal};
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

/// How often sled is flushed so that the log can be cut, and the segment size that forces it
/// earlier.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
const CHECKPOINT_BYTES: u64 = 64 << 20;

/// What the flusher thread owns.
struct Flusher {
    db: sled::Db,
    data_file: File,
    wal: Arc<Wal>,
    segment: Option<Segment>,
    next_segment: u64,
    checkpointed: Instant,
}

impl Flusher {
    /// Writes `bytes` to the current segment (started on first use) and makes them durable.
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.segment.is_none() {
            self.segment = Some(self.wal.create_segment(self.next_segment)?);
            self.next_segment += 1;
        }
        let segment = self.segment.as_mut().expect("just created");
        self.wal.write(segment, bytes)
    }

    fn checkpoint_due(&self) -> bool {
        self.segment.as_ref().is_some_and(|s| {
            s.bytes >= CHECKPOINT_BYTES
                || (s.bytes > 0 && self.checkpointed.elapsed() >= CHECKPOINT_EVERY)
        })
    }

    /// Flushes sled and drops the segments it now covers. Everything written to a segment was
    /// applied to sled before, so once sled is durable the closed segments hold nothing more.
    fn checkpoint(&mut self) -> std::io::Result<()> {
        self.checkpointed = Instant::now();
        if self.segment.take().is_none() {
            return Ok(());
        }
        flush(&self.db, &self.data_file).map_err(std::io::Error::other)?;
        let next = self.wal.create_segment(self.next_segment)?;
        self.next_segment += 1;
        self.wal.remove_before(&next)?;
        self.segment = Some(next);
        Ok(())
    }
}

impl GroupCommit {
    /// Starts the flusher thread: records appended to `wal` are written to its segments, from
    /// `next_segment` on, and `db` (whose log file is `data_file`) is checkpointed behind them.
    /// `lsn` is the last LSN already durable.
    pub fn start(
        db: sled::Db,
        data_file: File,
        wal: Arc<Wal>,
        lsn: u64,
        next_segment: u64,
    ) -> Arc<GroupCommit> {
        let commit = Arc::new(GroupCommit {
            state: Mutex::new(State {
                issued: lsn,
                durable: lsn,
                ..State::default()
            }),
            work: Condvar::new(),
            done: Condvar::new(),
            flushes: Mutex::new(Histogram::default()),
            broken: AtomicBool::new(false),
            flusher: Mutex::new(None),
        });
        let flusher = Flusher {
            db,
            data_file,
            wal,
            segment: None,
            next_segment,
            checkpointed: Instant::now(),
        };
        let thread = Arc::clone(&commit);
        let handle = std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || thread.run(flusher))
            .expect("the group-commit thread starts");
        *commit.flusher.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        commit
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self, mut flusher: Flusher) {
        loop {
            let stop = {
                let mut state = self.lock();
                // Settled: every ticket is durable or was already answered with a failed flush.
                // A failure is not retried: the log's tail is unknown after it.
                let settled = |s: &State| {
                    s.issued == s.durable
                        || s.failed.as_ref().is_some_and(|(upto, _)| *upto >= s.issued)
                };
                let checkpoint = |f: &Flusher| f.checkpoint_due() && !self.is_broken();
                while settled(&state) && !state.stop && !checkpoint(&flusher) {
                    let idle = self.work.wait_timeout(state, CHECKPOINT_EVERY);
                    state = idle.unwrap_or_else(|e| e.into_inner()).0;
                }
                settled(&state) && state.stop
            };
            if self.is_broken() {
                // Nothing more reaches the log; whatever was issued meanwhile fails.
                let _ = flusher.wal.take();
                let late = {
                    let state = self.lock();
                    let issued = state.issued;
                    state
                        .failed
                        .as_ref()
                        .filter(|(upto, _)| *upto < issued)
                        .map(|(_, why)| (issued, why.clone()))
                };
                if let Some((issued, why)) = late {
                    self.settle(issued, Err(why));
                }
            } else {
                let (bytes, last) = flusher.wal.take();
                if !bytes.is_empty() {
                    let started = Instant::now();
                    let result = flusher.write(&bytes);
                    self.flushes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .observe(started.elapsed());
                    self.settle(last, result.map_err(|e| e.to_string()));
                }
                if stop || flusher.checkpoint_due() {
                    if let Err(e) = flusher.checkpoint() {
                        let last = self.lock().durable;
                        self.settle(last, Err(format!("checkpoint: {e}")));
                    }
                }
            }
            if stop {
                return;
            }
        }
    }

    fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    /// Records the outcome of writing the log up to `last` and wakes whom it concerns.
    fn settle(&self, last: u64, result: Result<(), String>) {
        let waiters = {
            let mut state = self.lock();
            match result {
                Ok(()) => {
                    state.durable = state.durable.max(last);
                    state.settle_pending(last, true);
                }
                Err(e) => {
                    log::error!(
                        "writing the store failed: {e}; writes are refused, and servers with \
                         unacknowledged writes answer 503, until the service is restarted \
                         (after fixing the disk)"
                    );
                    // Every write not yet durable fails with it.
                    let upto = state.issued.max(last);
                    state.failed = Some((upto, e));
                    state.settle_pending(upto, false);
                    self.broken.store(true, Ordering::Release);
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

    /// Registers `lsn`, a write to `server` applied in memory and appended to the log (called
    /// in the write order).
    pub fn issue(&self, lsn: u64, server: Uuid) {
        let mut state = self.lock();
        state.issued = lsn;
        state.pend(lsn, server);
        self.work.notify_one();
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
        self.wait(self.latest())
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
/// still lose what a checkpoint covers without the explicit fdatasync.
pub fn flush(db: &sled::Db, data_file: &File) -> Result<(), sled::Error> {
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
}
