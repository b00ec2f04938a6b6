//! The embedded backend: sled trees whose keys make every API question an ordered range scan.

mod commit;
mod import;
mod lag;
mod locks;
#[cfg(test)]
mod model_test;
mod open;
mod purge;
mod read;
mod servers;
mod write;

use std::fs::File;
use std::sync::Arc;

use sled::Tree;

#[cfg(test)]
use super::codec::RECORD_FORMAT;
use super::codec::{decode, decode_action_with_events, encode_action};
use super::codec::{
    decode_events, decode_server, decode_view, encode_server, split_action, tx_decode_server,
};
use super::error::{TxResult, abort};
use super::interface::flush_error;
use super::keys::{
    self, ActionKey, action_key, first_started_at_or_before, is_newer, last_started_at_or_after,
    request_key,
};
use super::semantics;
pub use super::{
    ActionFilter, ActionStart, ActionWithEvents, After, Applied, Cursor, EventFinish, EventStart,
    ImportCounts, PageEnd, PageQuery, Result, ServerFields, StoreError, Written,
};
use crate::model::{Action, ActionView, Event, Server};
use crate::timeutil::Micros;
use commit::GroupCommit;
pub(super) use lag::updated_within;
use lag::{Lag, widen_lag};
use locks::{ServerGuard, ServerLocks};

/// sled's own default is 1 GB; a small cache keeps an edge host's footprint small and the hot
/// pages (the newest actions of busy servers) still fit.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The key layout of the trees, stored under `format`: newest-first action keys, each action
/// record followed by its event list (since 4), purges under way marked by tombstones in the
/// `purging` tree (since 5). Layouts 3 (event lists in a tree of their own) and 4 are migrated
/// on open.
/// Since 6, the `servers_by_created` and `servers_by_project` listing indexes (`servers.rs`).
const LAYOUT: u8 = 6;

pub struct SledStore {
    dir: std::path::PathBuf,
    db: sled::Db,
    servers: Tree,
    actions: Tree,
    by_request: Tree,
    lag: Tree,
    servers_by_created: Tree,
    servers_by_project: Tree,
    /// Small named values the service keeps with the data (the mirror's watermark).
    meta: Tree,
    /// Ids whose purge has begun and not yet finished (see `purge.rs`).
    purging: Tree,
    data_file: File,
    commit: Arc<GroupCommit>,
    locks: ServerLocks,
}

impl SledStore {
    pub fn path(&self) -> &std::path::Path {
        &self.dir
    }
}

impl<T> Applied<T> {
    /// Blocks until the write is on disk.
    pub fn wait_on(self, store: &SledStore) -> Result<Written<T>> {
        if let Some(ticket) = self.ticket {
            store.commit.wait(ticket).map_err(flush_error)?;
        }
        Ok(self.written)
    }

    /// Resolves once the write is on disk, without holding a thread.
    pub(super) async fn durable_on(self, store: &SledStore) -> Result<Written<T>> {
        if let Some(ticket) = self.ticket {
            store.commit.wait_async(ticket).await.map_err(flush_error)?;
        }
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServerV1;
    use crate::store::codec::encode;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(".{0,20}")
    }

    fn action() -> impl Strategy<Value = Action> {
        (
            ".{1,20}",
            ".{1,20}",
            text(),
            text(),
            any::<i64>(),
            any::<Option<i64>>(),
            any::<Option<i64>>(),
            text(),
        )
            .prop_map(
                |(
                    request_id,
                    action,
                    user_id,
                    project_id,
                    start_time,
                    finish_time,
                    updated_at,
                    message,
                )| Action {
                    request_id,
                    action,
                    user_id,
                    project_id,
                    start_time,
                    finish_time,
                    updated_at,
                    message,
                    created_at: finish_time,
                },
            )
    }

    fn event() -> impl Strategy<Value = Event> {
        (
            ".{1,20}",
            any::<Option<i64>>(),
            any::<Option<i64>>(),
            text(),
            text(),
            text(),
            text(),
        )
            .prop_map(
                |(event, start_time, finish_time, result, traceback, host, details)| Event {
                    event,
                    start_time,
                    finish_time,
                    result,
                    traceback,
                    host,
                    details,
                    created_at: None,
                },
            )
    }

    proptest! {
        #[test]
        fn records_round_trip(a in action(), e in event()) {
            prop_assert_eq!(decode::<Action>(&encode(&a)).unwrap(), a);
            prop_assert_eq!(decode::<Event>(&encode(&e)).unwrap(), e);
        }

        #[test]
        fn action_records_hold_their_events_after_the_action(
            a in action(),
            events in proptest::collection::vec(event(), 0..4),
        ) {
            let record = encode_action(&a, &events);
            // A list reads the action alone, in place or owned.
            prop_assert_eq!(decode::<Action>(&record).unwrap(), a.clone());
            prop_assert_eq!(decode_view(&record).unwrap(), a.view());
            prop_assert_eq!(decode_action_with_events(&record).unwrap(), (a, events));
        }
    }

    /// Action `req-{n}`, started and updated at `n`.
    fn numbered_action(n: i64) -> Action {
        Action {
            request_id: format!("req-{n}"),
            action: "reboot".into(),
            user_id: None,
            project_id: None,
            start_time: n,
            finish_time: None,
            updated_at: Some(n),
            message: None,
            created_at: None,
        }
    }

    #[test]
    fn a_layout_3_store_is_migrated_on_open_and_loses_nothing() {
        let dir = std::env::temp_dir().join(format!("nova-actions-unit-{}", Uuid::new_v4()));
        let server = Uuid::from_u128(7);
        let action = numbered_action;
        let event = |name: &str| Event {
            event: name.into(),
            start_time: Some(1),
            finish_time: None,
            result: None,
            traceback: None,
            host: Some("h".into()),
            details: None,
            created_at: None,
        };
        // 2,500 actions (three migration batches), every other one with two events.
        {
            let db = sled::open(&dir).unwrap();
            let (actions, events) = (
                db.open_tree("actions").unwrap(),
                db.open_tree("events").unwrap(),
            );
            for n in 0..2500 {
                let key = action_key(&server, n, n as u64);
                actions.insert(key, encode(&action(n))).unwrap();
                if n % 2 == 0 {
                    events
                        .insert(key, encode(&vec![event("a"), event("b")]))
                        .unwrap();
                }
            }
            db.insert("format", &[3]).unwrap();
            db.flush().unwrap();
        }
        let store = SledStore::open(&dir).unwrap();
        for n in [0, 1, 1234, 2499] {
            let key = action_key(&server, n, n as u64);
            let (stored, events) =
                decode_action_with_events(&store.actions.get(key).unwrap().unwrap()).unwrap();
            assert_eq!(stored, action(n));
            let expected = if n % 2 == 0 {
                vec![event("a"), event("b")]
            } else {
                vec![]
            };
            assert_eq!(events, expected, "action {n}");
        }
        assert_eq!(store.actions.len(), 2500);
        assert_eq!(store.db.get("format").unwrap().unwrap().as_ref(), [LAYOUT]);
        assert!(
            !store
                .db
                .tree_names()
                .iter()
                .any(|n| n.as_ref() == b"events")
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn records_carry_their_format_version() {
        let v1 = ServerV1 {
            project_id: "p".into(),
            user_id: None,
            host: None,
            created_at: None,
            deleted: true,
            deleted_at: Some(5),
        };
        let bytes = encode(&v1);
        assert_eq!(bytes[0], RECORD_FORMAT);
        assert_eq!(decode::<ServerV1>(&bytes).unwrap(), v1);
        // A server written before names reads as one without name, status or order.
        assert_eq!(decode_server(&bytes).unwrap(), Server::from(v1.clone()));
        let mut future = bytes.clone();
        future[0] = RECORD_FORMAT + 2;
        assert!(matches!(
            decode_server(&future),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(decode_server(&[]), Err(StoreError::Corrupt(_))));
        let named = Server {
            name: Some("web-1".into()),
            status: Some("SHUTOFF".into()),
            updated_at: Some(9),
            seq: 42,
            ..Server::from(v1)
        };
        let bytes = encode_server(&named);
        assert_eq!(bytes[0], RECORD_FORMAT + 1);
        assert_eq!(decode_server(&bytes).unwrap(), named);
    }

    #[test]
    fn a_retry_is_not_acknowledged_before_the_write_it_repeats() {
        let dir = std::env::temp_dir().join(format!("nova-actions-unit-{}", Uuid::new_v4()));
        let store = SledStore::open(&dir).unwrap();
        let id = Uuid::from_u128(3);
        let fields = || ServerFields {
            project_id: "p".into(),
            user_id: None,
            host: None,
            created_at: Some(1),
            name: None,
            status: None,
            updated_at: None,
            written_at: 1,
        };
        let first = store.apply_upsert_server(&id, fields()).unwrap();
        let retry = store.apply_upsert_server(&id, fields()).unwrap();
        assert!(first.written.changed && !retry.written.changed);
        // The retry waits for a ticket covering the first write, not for nothing.
        assert!(
            retry.ticket.unwrap() >= first.ticket.unwrap(),
            "{} < {}",
            retry.ticket.unwrap(),
            first.ticket.unwrap()
        );
        retry.wait_on(&store).unwrap();
        assert!(store.commit.durable_ticket() >= first.ticket.unwrap());
        first.wait_on(&store).unwrap();
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn half_written_snapshots_are_removed_before_open() {
        let dir = std::env::temp_dir().join(format!("nova-actions-unit-{}", Uuid::new_v4()));
        {
            let store = SledStore::open(&dir).unwrap();
            store
                .upsert_server(
                    &Uuid::from_u128(1),
                    ServerFields {
                        project_id: "p".into(),
                        user_id: None,
                        host: None,
                        created_at: None,
                        name: None,
                        status: None,
                        updated_at: None,
                        written_at: 1,
                    },
                )
                .unwrap();
        }
        std::fs::write(dir.join("snap.0000000000001234.generating"), b"half").unwrap();
        let store = SledStore::open(&dir).unwrap();
        assert!(!dir.join("snap.0000000000001234.generating").exists());
        assert_eq!(
            store
                .server(&Uuid::from_u128(1))
                .unwrap()
                .unwrap()
                .project_id,
            "p"
        );
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_layout_4_store_buries_what_interrupted_purges_left_and_finishes_them() {
        let dir = std::env::temp_dir().join(format!("nova-actions-unit-{}", Uuid::new_v4()));
        let (kept, orphan) = (Uuid::from_u128(0x10), Uuid::from_u128(0x20));
        let action = numbered_action;
        {
            // What a layout-4 purge killed half way left: history without a server record.
            let db = sled::open(&dir).unwrap();
            let servers = db.open_tree("servers").unwrap();
            let actions = db.open_tree("actions").unwrap();
            let by_request = db.open_tree("action_by_request").unwrap();
            let server = crate::model::ServerV1 {
                project_id: "p".into(),
                user_id: None,
                host: None,
                created_at: None,
                deleted: false,
                deleted_at: None,
            };
            servers.insert(kept.as_bytes(), encode(&server)).unwrap();
            for id in [kept, orphan] {
                for n in 0..5 {
                    let key = action_key(&id, n, n as u64);
                    actions.insert(key, encode_action(&action(n), &[])).unwrap();
                    by_request
                        .insert(request_key(&id, &format!("req-{n}")), &key[..])
                        .unwrap();
                }
            }
            db.insert("format", &[4]).unwrap();
            db.flush().unwrap();
        }
        let store = SledStore::open(&dir).unwrap();
        assert_eq!(store.db.get("format").unwrap().unwrap().as_ref(), [LAYOUT]);
        assert_eq!(store.purges_pending().unwrap(), 1);
        assert_eq!(store.server(&orphan).unwrap(), None);
        assert_eq!(store.resume_purges().unwrap(), 1);
        assert_eq!(store.purges_pending().unwrap(), 0);
        assert_eq!(store.actions.scan_prefix(orphan.as_bytes()).count(), 0);
        assert_eq!(store.by_request.scan_prefix(orphan.as_bytes()).count(), 0);
        assert_eq!(store.actions.scan_prefix(kept.as_bytes()).count(), 5);
        assert!(store.show(&kept, "req-3", false).unwrap().is_some());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn temp_store() -> (SledStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("nova-actions-unit-{}", Uuid::new_v4()));
        (SledStore::open(&dir).unwrap(), dir)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The bounded range scan returns exactly what filtering the whole history would.
        #[test]
        fn filtered_scans_match_a_full_filter(
            rows in proptest::collection::vec((0i64..40, proptest::option::of(-10i64..30)), 0..40),
            marker in proptest::option::of(0usize..40),
            since in proptest::option::of(0i64..60),
            before in proptest::option::of(0i64..60),
        ) {
            let (store, dir) = temp_store();
            let server = Uuid::from_u128(42);
            let history = crate::model::ServerHistory {
                uuid: server,
                server: Server { project_id: "p".into(), ..Server::default() },
                actions: rows.iter().enumerate().map(|(i, (start, lag))| (Action {
                    request_id: format!("req-{i}"),
                    action: "a".into(),
                    user_id: None,
                    project_id: None,
                    start_time: *start,
                    finish_time: None,
                    updated_at: lag.map(|l| start + l),
                    message: None,
                    created_at: None,
                }, Vec::new())).collect(),
            };
            store.import_server(&history).unwrap();
            // The model: recording order breaks start-time ties, newest first.
            let mut model: Vec<(i64, usize, Option<i64>)> =
                rows.iter().enumerate().map(|(i, (s, l))| (*s, i, l.map(|l| s + l))).collect();
            model.sort_by_key(|r| std::cmp::Reverse((r.0, r.1)));
            let marker = marker.filter(|m| *m < rows.len());
            if let Some(m) = marker {
                let pos = model.iter().position(|r| r.1 == m).unwrap();
                model.drain(..=pos);
            }
            model.retain(|r| {
                (since.is_none() && before.is_none())
                    || r.2.is_some_and(|u| since.is_none_or(|s| u >= s) && before.is_none_or(|b| u <= b))
            });
            let expected: Vec<String> = model.iter().map(|r| format!("req-{}", r.1)).collect();
            let older_than = marker.map(|m| store.find_action(&server, &format!("req-{m}")).unwrap().unwrap().0);
            let got: Vec<String> = store
                .actions_newest_first(&server, &ActionFilter { older_than, since, before })
                .unwrap()
                .map(|r| r.unwrap().1.request_id)
                .collect();
            drop(store);
            std::fs::remove_dir_all(&dir).unwrap();
            prop_assert_eq!(got, expected);
        }
    }
}
