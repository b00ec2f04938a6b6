//! One writer at a time per server. A write reads before it writes (is this request id stored?
//! is the server being purged?); serializing the writes of one server makes those reads and the
//! writes that follow one step, whatever the mix of HTTP writes, imports and purges.

use std::sync::{Mutex, MutexGuard};

use uuid::Uuid;

/// Enough stripes that unrelated servers rarely share one; a stripe costs one word.
const STRIPES: usize = 256;

pub struct ServerLocks {
    stripes: Box<[Mutex<()>]>,
}

/// Held while one server's records are read and rewritten. Never take a second one while
/// holding one: two servers may share a stripe.
pub struct ServerGuard<'a> {
    _guard: MutexGuard<'a, ()>,
}

impl ServerLocks {
    pub fn new() -> ServerLocks {
        ServerLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    pub fn lock(&self, server: &Uuid) -> ServerGuard<'_> {
        let (hi, lo) = server.as_u64_pair();
        let stripe = ((hi ^ lo) % STRIPES as u64) as usize;
        // A panic while holding the lock leaves what a crash would: a write's transaction
        // either applied or not, an import line partly stored (a re-import repairs it), a purge
        // under its tombstone. So a poisoned stripe is as good as a clean one.
        let guard = self.stripes[stripe]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ServerGuard { _guard: guard }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_writer_per_server_at_a_time() {
        let locks = Arc::new(ServerLocks::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (locks, inside, most) = (locks.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let _g = locks.lock(&Uuid::from_u128(42));
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }
}
