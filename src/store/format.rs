//! The store's layout version, checked (and migrated from the previous one) on open, before
//! anything else reads or writes it.

use std::fs::File;

use sled::transaction::ConflictableTransactionError;
use sled::{IVec, Transactional, Tree};

use super::{LAYOUT, Result, StoreError, decode, encode_action, flush_sled, split_action};
use crate::model::Event;

pub(super) fn check_format(db: &sled::Db, actions: &Tree, data_file: &File) -> Result<()> {
    match db.get("format")? {
        None => {
            db.insert("format", &[LAYOUT])?;
            flush_sled(db, data_file)
        }
        Some(v) if v.as_ref() == [LAYOUT] => Ok(()),
        Some(v) if v.as_ref() == [3] => migrate_from_layout_3(db, actions, data_file),
        Some(v) => Err(StoreError::Corrupt(format!(
            "store layout {v:?} is not one this version understands ({LAYOUT}): export it with the version that wrote it and import it here"
        ))),
    }
}

/// Layout 3 kept each action's event list in an `events` tree under the action's key: move
/// every list to the end of its action record. Each batch moves and removes in one
/// transaction, so an interrupted migration resumes where it stopped.
fn migrate_from_layout_3(db: &sled::Db, actions: &Tree, data_file: &File) -> Result<()> {
    let events = db.open_tree("events")?;
    log::info!("migrating the store to layout {LAYOUT} (event lists inside action records)");
    let mut moved = 0u64;
    loop {
        let batch: Vec<(IVec, IVec)> = events
            .iter()
            .take(1000)
            .collect::<std::result::Result<_, _>>()?;
        if batch.is_empty() {
            break;
        }
        (actions, &events).transaction(|(actions, events)| {
            for (key, list) in &batch {
                // A layout-3 list is one record: format byte, then the bincode list.
                let list =
                    decode::<Vec<Event>>(list).map_err(ConflictableTransactionError::Abort)?;
                if let Some(action) = actions.get(key)? {
                    let (action, _) =
                        split_action(&action).map_err(ConflictableTransactionError::Abort)?;
                    actions.insert(key, encode_action(&action, &list))?;
                }
                events.remove(key)?;
            }
            Ok(())
        })?;
        moved += batch.len() as u64;
    }
    db.drop_tree("events")?;
    db.insert("format", &[LAYOUT])?;
    flush_sled(db, data_file)?;
    log::info!("migration done: {moved} event lists moved");
    Ok(())
}
