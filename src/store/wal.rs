//! The write-ahead log that makes writes durable without flushing sled for each group.
//!
//! Every write is one sled transaction; under one lock it is applied in memory, stamped with the
//! next log sequence number (LSN, also written into sled by the same transaction) and its puts are
//! appended here. The group-commit thread writes the appended records to the current segment and
//! fdatasyncs it; that is when a write is acknowledged. Once a second the thread checkpoints:
//! it starts a new segment, flushes sled, and deletes the older segments.
//!
//! sled may persist its own buffers ahead of the log (a full log buffer is written without a
//! flush), so on open the records are replayed only after the LSN sled itself recovered: its
//! recovery is a prefix of the transactions, and the LSN is part of each.
//!
//! A record on disk: payload length (u32 LE), CRC-32 of the payload (u32 LE), payload (bincode of
//! the LSN and the puts). A short or damaged record ends the log: it was never acknowledged.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

/// Which tree a put is for; the numbers are part of the log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TreeId {
    Servers = 0,
    Actions = 1,
    ByRequest = 2,
    Lag = 3,
}

/// One key set (`Some`) or removed (`None`) by a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Put {
    pub tree: TreeId,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub lsn: u64,
    pub puts: Vec<Put>,
}

/// Records appended and not yet written to a segment.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    last_lsn: u64,
}

pub struct Wal {
    dir: PathBuf,
    pending: Mutex<Pending>,
}

/// The segment being written; only the group-commit thread touches it.
pub struct Segment {
    file: File,
    number: u64,
    pub bytes: u64,
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.wal"))
}

/// The segments in `dir`, oldest first.
pub fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let number = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(number) = number {
            found.push((number, path));
        }
    }
    found.sort();
    Ok(found)
}

pub fn encode_record(out: &mut Vec<u8>, record: &Record) {
    let payload = bincode::serde::encode_to_vec(record, bincode::config::standard())
        .expect("encoding into a Vec cannot fail");
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// The records of one segment's bytes, up to the first short or damaged one; the flag says
/// whether the bytes ended cleanly.
pub fn decode_records(mut bytes: &[u8]) -> (Vec<Record>, bool) {
    let mut records = Vec::new();
    while !bytes.is_empty() {
        let Some(record) = next_record(&mut bytes) else {
            return (records, false);
        };
        records.push(record);
    }
    (records, true)
}

fn next_record(bytes: &mut &[u8]) -> Option<Record> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    let payload = bytes.get(8..8 + len)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let (record, used) =
        bincode::serde::decode_from_slice::<Record, _>(payload, bincode::config::standard())
            .ok()?;
    if used != payload.len() {
        return None;
    }
    *bytes = &bytes[8 + len..];
    Some(record)
}

impl Wal {
    pub fn new(dir: PathBuf) -> Wal {
        Wal {
            dir,
            pending: Mutex::new(Pending::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a record; the caller holds the write order, so LSNs arrive in order. Returns how
    /// many bytes now wait to be written.
    pub fn append(&self, record: &Record) -> usize {
        let mut pending = self.lock();
        encode_record(&mut pending.bytes, record);
        pending.last_lsn = record.lsn;
        pending.bytes.len()
    }

    /// Takes what was appended since the last call: the bytes and the last LSN in them.
    pub fn take(&self) -> (Vec<u8>, u64) {
        let mut pending = self.lock();
        let last = pending.last_lsn;
        (std::mem::take(&mut pending.bytes), last)
    }

    /// Starts segment `number` (after the ones already there).
    pub fn create_segment(&self, number: u64) -> io::Result<Segment> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(segment_path(&self.dir, number))?;
        // The new name must survive a crash before anything in it counts.
        File::open(&self.dir)?.sync_all()?;
        Ok(Segment {
            file,
            number,
            bytes: 0,
        })
    }

    /// Writes `bytes` to the segment and makes them durable.
    pub fn write(&self, segment: &mut Segment, bytes: &[u8]) -> io::Result<()> {
        segment.file.write_all(bytes)?;
        segment.file.sync_data()?;
        segment.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Removes the segments before `segment`: sled holds everything they hold.
    pub fn remove_before(&self, segment: &Segment) -> io::Result<()> {
        for (number, path) in segments(&self.dir)? {
            if number < segment.number {
                fs::remove_file(path)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(lsn: u64) -> Record {
        Record {
            lsn,
            puts: vec![
                Put {
                    tree: TreeId::Actions,
                    key: vec![1, 2, 3],
                    value: Some(vec![lsn as u8; 40]),
                },
                Put {
                    tree: TreeId::ByRequest,
                    key: b"k".to_vec(),
                    value: None,
                },
            ],
        }
    }

    #[test]
    fn records_read_back_up_to_a_torn_or_damaged_one() {
        let mut bytes = Vec::new();
        for lsn in 1..=3 {
            encode_record(&mut bytes, &record(lsn));
        }
        assert_eq!(
            decode_records(&bytes),
            (vec![record(1), record(2), record(3)], true)
        );
        // A crash in the middle of the last record.
        for cut in 1..20 {
            let (records, clean) = decode_records(&bytes[..bytes.len() - cut]);
            assert_eq!(records, vec![record(1), record(2)]);
            assert!(!clean);
        }
        // A flipped bit in the second record ends the log there.
        let mut damaged = bytes.clone();
        let second = bytes.len() / 3 + 20;
        damaged[second] ^= 0x10;
        let (records, clean) = decode_records(&damaged);
        assert_eq!(records, vec![record(1)]);
        assert!(!clean);
    }

    #[test]
    fn segments_are_listed_oldest_first_and_removed_behind_a_checkpoint() {
        let dir = std::env::temp_dir().join(format!("nova-actions-wal-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        let wal = Wal::new(dir.clone());
        let mut first = wal.create_segment(9).unwrap();
        wal.write(&mut first, b"abc").unwrap();
        let second = wal.create_segment(10).unwrap();
        fs::write(dir.join("notes.txt"), b"not a segment").unwrap();
        let numbers: Vec<u64> = segments(&dir).unwrap().into_iter().map(|s| s.0).collect();
        assert_eq!(numbers, vec![9, 10]);
        wal.remove_before(&second).unwrap();
        let numbers: Vec<u64> = segments(&dir).unwrap().into_iter().map(|s| s.0).collect();
        assert_eq!(numbers, vec![10]);
        assert!(dir.join("notes.txt").exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
