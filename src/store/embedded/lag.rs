//! Lag bounds: per server, how far an action's `updated_at` strays from its `start_time`, so
//! that a `changes-since`/`changes-before` scan visits only the part of a history that can match.

use sled::IVec;
use sled::transaction::{TransactionalTree, UnabortableTransactionError};
use uuid::Uuid;

use super::{Result, SledStore};
use crate::timeutil::Micros;

/// How far an action's `updated_at` strays from its `start_time` on one server. It bounds the
/// part of the history a `changes-since`/`changes-before` scan must visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Lag {
    pub(super) max: i64,
    pub(super) min: i64,
}

impl Lag {
    pub(super) fn decode(bytes: Option<IVec>) -> Lag {
        match bytes {
            Some(b) if b.len() == 16 => Lag {
                max: i64::from_be_bytes(b[..8].try_into().unwrap()),
                min: i64::from_be_bytes(b[8..].try_into().unwrap()),
            },
            _ => Lag::default(),
        }
    }

    /// These bounds, stretched to cover lags from `lo` to `hi`.
    fn widened(self, hi: i64, lo: i64) -> Lag {
        Lag {
            max: self.max.max(hi),
            min: self.min.min(lo),
        }
    }

    pub(super) fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.max.to_be_bytes());
        out[8..].copy_from_slice(&self.min.to_be_bytes());
        out
    }
}

pub(in crate::store) fn updated_within(
    updated_at: Option<Micros>,
    since: Option<Micros>,
    before: Option<Micros>,
) -> bool {
    if since.is_none() && before.is_none() {
        return true;
    }
    let Some(t) = updated_at else { return false };
    since.is_none_or(|s| t >= s) && before.is_none_or(|b| t <= b)
}

impl SledStore {
    /// `widen_lag` for a writer that holds the server's lock instead of a transaction.
    pub(super) fn widen_lag_outside_transaction(
        &self,
        server: &Uuid,
        hi: i64,
        lo: i64,
    ) -> Result<()> {
        let old = Lag::decode(self.lag.get(server.as_bytes())?);
        let new = old.widened(hi, lo);
        if new != old {
            self.lag.insert(server.as_bytes(), &new.encode())?;
        }
        Ok(())
    }
}

pub(super) fn widen_lag(
    tree: &TransactionalTree,
    server: &Uuid,
    lag: i64,
) -> Result<(), UnabortableTransactionError> {
    let old = Lag::decode(tree.get(server.as_bytes())?);
    let new = old.widened(lag, lag);
    if new != old {
        tree.insert(server.as_bytes(), &new.encode())?;
    }
    Ok(())
}
