//! The store's errors, in operators' words: what a client is told is the API layer's choice.

use std::fmt;
use std::path::PathBuf;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use uuid::Uuid;

use crate::input::excerpt;

#[derive(Debug)]
pub enum StoreError {
    ServerNotFound(Uuid),
    ActionNotFound {
        server: Uuid,
        request_id: String,
    },
    EventNotFound {
        event: String,
        request_id: String,
    },
    Corrupt(String),
    Open {
        path: PathBuf,
        reason: String,
    },
    Io(sled::Error),
    /// A list's marker names no action of the server.
    MarkerNotFound,
    /// The database cannot be reached, or did not answer within its timeouts: worth a retry.
    Unavailable(String),
    /// The database refused a statement (a bug or a schema out of step): not worth a retry.
    Database(String),
    /// A failed flush covered writes to this server: what memory holds may not be on disk.
    Unconfirmed(Uuid),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Operators' words: what a client reads is the API layer's choice (api::fault).
            StoreError::ServerNotFound(id) => write!(f, "no server {id}"),
            StoreError::ActionNotFound { server, request_id } => write!(
                f,
                "no action with request id {} on server {server}",
                excerpt(request_id)
            ),
            StoreError::EventNotFound { event, request_id } => write!(
                f,
                "no event {} in the action of request id {}",
                excerpt(event),
                excerpt(request_id)
            ),
            StoreError::MarkerNotFound => write!(f, "the marker names no action"),
            StoreError::Corrupt(what) => write!(f, "corrupt record: {what}"),
            StoreError::Open { path, reason } => {
                write!(f, "cannot open the store at {}: {reason}", path.display())
            }
            StoreError::Io(e) => write!(f, "storage error: {e}"),
            StoreError::Unavailable(why) => write!(f, "the database is unavailable: {why}"),
            StoreError::Database(why) => write!(f, "database error: {why}"),
            StoreError::Unconfirmed(id) => write!(
                f,
                "server {id} has writes that a failed flush did not confirm"
            ),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e)
    }
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Io(e),
        }
    }
}

pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

pub(super) fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
