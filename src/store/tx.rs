//! Logged transactions: every write of the store goes through [`Store::logged`], which applies it
//! to sled and appends its puts to the write-ahead log in one order; and the replay of that log
//! when the store is opened.

use std::cell::RefCell;
use std::fs::File;
use std::path::Path;

use sled::transaction::{TransactionalTree, UnabortableTransactionError};
use sled::{IVec, Transactional, Tree};
use uuid::Uuid;

use super::wal::{self, Put, Record, TreeId};
use super::{Result, Store, StoreError, TxResult, flush_sled};

/// Where sled keeps the LSN of the last logged transaction it holds.
const LSN_KEY: &[u8] = b"lsn";

/// A writer that finds this much of the log not yet written waits for it (bulk imports can
/// append faster than a disk writes).
const MAX_PENDING_BYTES: usize = 8 << 20;

/// The trees of one logged transaction. Every insert and remove is recorded for the log.
pub(super) struct Tx<'a> {
    trees: &'a [TransactionalTree],
    puts: &'a RefCell<Vec<Put>>,
}

type TxOp<T> = std::result::Result<T, UnabortableTransactionError>;

impl Tx<'_> {
    fn tree(&self, id: TreeId) -> &TransactionalTree {
        &self.trees[id as usize]
    }

    pub fn get(&self, id: TreeId, key: impl AsRef<[u8]>) -> TxOp<Option<IVec>> {
        self.tree(id).get(key)
    }

    pub fn insert(&self, id: TreeId, key: &[u8], value: impl Into<IVec>) -> TxOp<()> {
        let value: IVec = value.into();
        self.puts.borrow_mut().push(Put {
            tree: id,
            key: key.to_vec(),
            value: Some(value.to_vec()),
        });
        self.tree(id).insert(key, value)?;
        Ok(())
    }

    pub fn remove(&self, id: TreeId, key: &[u8]) -> TxOp<()> {
        self.puts.borrow_mut().push(Put {
            tree: id,
            key: key.to_vec(),
            value: None,
        });
        self.tree(id).remove(key)?;
        Ok(())
    }
}

fn lsn_of(bytes: Option<IVec>) -> u64 {
    bytes
        .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
        .map_or(0, u64::from_be_bytes)
}

impl Store {
    /// Runs `work` as one sled transaction over every tree, appends what it changed to the log,
    /// and registers it with the group commit for `server`. Returns the LSN to wait for, or
    /// `None` when nothing changed.
    pub(super) fn logged<R>(
        &self,
        server: &Uuid,
        work: impl Fn(&Tx<'_>) -> TxResult<R>,
    ) -> Result<(R, Option<u64>)> {
        let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        let lsn = *order + 1;
        let puts = RefCell::new(Vec::new());
        let trees: [&Tree; 5] = [
            &self.servers,
            &self.actions,
            &self.by_request,
            &self.lag,
            &self.wal_state,
        ];
        let out = trees[..].transaction(|trees| {
            // sled may run this more than once.
            puts.borrow_mut().clear();
            let out = work(&Tx { trees, puts: &puts })?;
            if !puts.borrow().is_empty() {
                trees[4].insert(LSN_KEY, &lsn.to_be_bytes())?;
            }
            Ok(out)
        })?;
        let puts = puts.into_inner();
        if puts.is_empty() {
            return Ok((out, None));
        }
        *order = lsn;
        let pending = self.wal.append(&Record { lsn, puts });
        self.commit.issue(lsn, *server);
        drop(order);
        if pending > MAX_PENDING_BYTES {
            self.commit.wait(lsn).map_err(super::flush_error)?;
        }
        Ok((out, Some(lsn)))
    }
}

/// Applies the log's records that sled does not hold yet, makes sled durable and removes the
/// segments. Returns the last LSN and the number for the next segment.
pub(super) fn replay(
    db: &sled::Db,
    trees: &[Tree; 4],
    wal_state: &Tree,
    dir: &Path,
    data_file: &File,
) -> Result<(u64, u64)> {
    let io = |e: std::io::Error| StoreError::Io(e.into());
    let mut lsn = lsn_of(wal_state.get(LSN_KEY)?);
    let segments = wal::segments(dir).map_err(io)?;
    let next_segment = segments.last().map_or(1, |(n, _)| n + 1);
    let mut replayed = 0u64;
    for (number, path) in &segments {
        let bytes = std::fs::read(path).map_err(io)?;
        let (records, clean) = wal::decode_records(&bytes);
        for record in records {
            if record.lsn <= lsn {
                continue;
            }
            apply(trees, wal_state, &record)?;
            lsn = record.lsn;
            replayed += 1;
        }
        if !clean {
            // A torn tail was never acknowledged; nothing after it can be either.
            log::warn!("the write-ahead log ends with an incomplete record in segment {number}");
            break;
        }
    }
    if !segments.is_empty() {
        flush_sled(db, data_file)?;
        for (_, path) in &segments {
            std::fs::remove_file(path).map_err(io)?;
        }
        log::info!(
            "write-ahead log: {replayed} records replayed from {} segments, now at {lsn}",
            segments.len()
        );
    }
    Ok((lsn, next_segment))
}

fn apply(trees: &[Tree; 4], wal_state: &Tree, record: &Record) -> Result<()> {
    let all: [&Tree; 5] = [&trees[0], &trees[1], &trees[2], &trees[3], wal_state];
    all[..].transaction(|t| {
        for put in &record.puts {
            let tree = &t[put.tree as usize];
            match &put.value {
                Some(value) => tree.insert(put.key.as_slice(), value.as_slice())?,
                None => tree.remove(put.key.as_slice())?,
            };
        }
        t[4].insert(LSN_KEY, &record.lsn.to_be_bytes())?;
        Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ServerFields;
    use crate::store::wal::encode_record;

    fn put(key: &[u8], value: &[u8]) -> Put {
        Put {
            tree: TreeId::Servers,
            key: key.to_vec(),
            value: Some(value.to_vec()),
        }
    }

    /// Sled is checkpointed behind the log while the store runs: the log does not grow without
    /// bound and a restart has little to replay.
    #[test]
    fn the_log_is_cut_behind_checkpoints() {
        let dir = std::env::temp_dir().join(format!("nova-actions-unit-{}", Uuid::new_v4()));
        let store = Store::open(&dir).unwrap();
        let fields = |n: u128| ServerFields {
            project_id: format!("p{n}"),
            user_id: None,
            host: None,
            created_at: Some(1),
        };
        store.upsert_server(&Uuid::from_u128(1), fields(1)).unwrap();
        let wal_dir = dir.join("wal");
        let first = wal::segments(&wal_dir).unwrap();
        assert_eq!(first.len(), 1);
        // The idle flusher checkpoints within about a second: sled is flushed and the segment
        // holding the write is replaced by an empty one.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while wal::segments(&wal_dir).unwrap() == first {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint in 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let after = wal::segments(&wal_dir).unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(std::fs::metadata(&after[0].1).unwrap().len(), 0);
        for n in 2..200 {
            store.upsert_server(&Uuid::from_u128(n), fields(n)).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(1500));
        store
            .upsert_server(&Uuid::from_u128(500), fields(500))
            .unwrap();
        let segments = wal::segments(&dir.join("wal")).unwrap();
        assert!(segments.len() <= 2, "{segments:?}");
        drop(store);
        // A clean stop leaves nothing to replay.
        let sizes: u64 = wal::segments(&dir.join("wal"))
            .unwrap()
            .iter()
            .map(|(_, p)| std::fs::metadata(p).unwrap().len())
            .sum();
        assert_eq!(sizes, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Records sled already holds are skipped (replaying them would take keys back in time),
    /// the later ones applied in order, a torn tail ignored, and the segments removed.
    #[test]
    fn replay_applies_only_what_sled_lacks() {
        let dir = std::env::temp_dir().join(format!("nova-actions-unit-{}", Uuid::new_v4()));
        let id = Uuid::from_u128(5);
        let lsn = {
            let store = Store::open(&dir).unwrap();
            let fields = ServerFields {
                project_id: "p".into(),
                user_id: None,
                host: None,
                created_at: Some(1),
            };
            store.upsert_server(&id, fields).unwrap();
            *store.order.lock().unwrap()
        };
        assert!(lsn >= 1);
        let mut bytes = Vec::new();
        let records = [
            (lsn, put(b"old", b"must not come back")),
            (lsn + 1, put(b"a", b"1")),
            (lsn + 2, put(b"a", b"2")),
            (lsn + 3, put(b"b", b"3")),
        ];
        for (lsn, put) in records {
            encode_record(
                &mut bytes,
                &Record {
                    lsn,
                    puts: vec![put],
                },
            );
        }
        bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
        std::fs::write(dir.join("wal").join(format!("{:020}.wal", 7)), &bytes).unwrap();

        let store = Store::open(&dir).unwrap();
        assert_eq!(store.servers.get(b"old").unwrap(), None);
        assert_eq!(store.servers.get(b"a").unwrap().unwrap().as_ref(), b"2");
        assert_eq!(store.servers.get(b"b").unwrap().unwrap().as_ref(), b"3");
        assert_eq!(*store.order.lock().unwrap(), lsn + 3);
        assert!(store.server(&id).unwrap().is_some());
        assert!(wal::segments(&dir.join("wal")).unwrap().is_empty());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
