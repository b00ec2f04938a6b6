//! Scheduled retention: like running `nova-manage db archive_deleted_rows` and purge from cron,
//! servers soft-deleted longer ago than the configured span go for good, with their history.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::store::Store;
use crate::timeutil::{format_micros, now_micros};

/// Runs one pass now and then one every `every`, until `stop` is set.
pub fn spawn(store: Arc<Store>, keep: Duration, every: Duration, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            run_once(&store, keep);
            let next = Instant::now() + every.max(Duration::from_secs(1));
            while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
}

pub fn run_once(store: &Store, keep: Duration) {
    let keep_micros = i64::try_from(keep.as_micros()).unwrap_or(i64::MAX);
    let cutoff = now_micros().saturating_sub(keep_micros);
    match store.purge_deleted_before(cutoff) {
        Ok((0, _)) => log::debug!(
            "retention: no server deleted before {}",
            format_micros(cutoff)
        ),
        Ok((servers, actions)) => log::info!(
            "retention: purged {servers} servers deleted before {} ({actions} actions with their events)",
            format_micros(cutoff)
        ),
        Err(e) => log::error!("retention pass failed: {e}"),
    }
}
