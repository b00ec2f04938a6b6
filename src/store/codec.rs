//! Records on disk: a format byte, then bincode. An action record carries its event list.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::ConflictableTransactionError;

use super::error::TxResult;
use super::{ActionWithEvents, Result, StoreError};
use crate::model::{Action, ActionView, Event, Server, ServerV1, ServerView};

/// Leading byte of every record: the layout can evolve with a migration instead of a rewrite.
pub(super) const RECORD_FORMAT: u8 = 1;

pub(crate) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    let mut out = vec![RECORD_FORMAT];
    bincode::serde::encode_into_std_write(record, &mut out, bincode::config::standard())
        .expect("writing into a Vec cannot fail");
    out
}

/// Leading byte of a server record since servers have names (older ones are `RECORD_FORMAT`,
/// read as [`ServerV1`] and never rewritten until the server is written again).
const SERVER_FORMAT: u8 = 2;

pub(crate) fn encode_server(server: &Server) -> Vec<u8> {
    let mut out = vec![SERVER_FORMAT];
    bincode::serde::encode_into_std_write(server, &mut out, bincode::config::standard())
        .expect("writing into a Vec cannot fail");
    out
}

pub(crate) fn decode_server(bytes: &[u8]) -> Result<Server> {
    match bytes.split_first() {
        Some((&SERVER_FORMAT, rest)) => Ok(decode_prefix(rest)?.0),
        _ => Ok(decode::<ServerV1>(bytes)?.into()),
    }
}

/// A server record of the current format read in place (listing index values are always
/// written in it).
pub(super) fn decode_server_view(bytes: &[u8]) -> Result<ServerView<'_>> {
    match bytes.split_first() {
        Some((&SERVER_FORMAT, rest)) => {
            bincode::serde::borrow_decode_from_slice(rest, bincode::config::standard())
                .map(|(view, _)| view)
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        }
        _ => Err(StoreError::Corrupt("listing entry format".into())),
    }
}

pub(super) fn tx_decode_server(bytes: &[u8]) -> TxResult<Server> {
    decode_server(bytes).map_err(ConflictableTransactionError::Abort)
}

/// What follows a record's format byte, if this version reads that format.
pub(super) fn record_body(bytes: &[u8]) -> Result<&[u8]> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT, rest)) => Ok(rest),
        Some((version, _)) => Err(StoreError::Corrupt(format!(
            "unknown record format {version}"
        ))),
        None => Err(StoreError::Corrupt("empty record".into())),
    }
}

/// A value at the start of `bytes`, and how many bytes it took.
pub(super) fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize)> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    Ok(decode_prefix(record_body(bytes)?)?.0)
}

/// An action record: the action, then its events oldest first. A list reads the first part
/// only; a show or a write reads both from the one record.
pub(crate) fn encode_action(action: &Action, events: &[Event]) -> Vec<u8> {
    let mut out = encode(action);
    bincode::serde::encode_into_std_write(events, &mut out, bincode::config::standard())
        .expect("writing into a Vec cannot fail");
    out
}

/// The action of an action record, and the encoded event list after it.
pub(super) fn split_action(bytes: &[u8]) -> Result<(Action, &[u8])> {
    let body = record_body(bytes)?;
    let (action, used) = decode_prefix(body)?;
    Ok((action, &body[used..]))
}

/// An action without events may end right after the action (one migrated from layout 3).
pub(super) fn decode_events(encoded: &[u8]) -> Result<Vec<Event>> {
    if encoded.is_empty() {
        return Ok(Vec::new());
    }
    Ok(decode_prefix(encoded)?.0)
}

pub(crate) fn decode_action_with_events(bytes: &[u8]) -> Result<ActionWithEvents> {
    let (action, events) = split_action(bytes)?;
    Ok((action, decode_events(events)?))
}

pub(super) fn decode_view<'a>(bytes: &'a [u8]) -> Result<ActionView<'a>> {
    bincode::serde::borrow_decode_from_slice(record_body(bytes)?, bincode::config::standard())
        .map(|(view, _)| view)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}
