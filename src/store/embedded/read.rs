//! The questions the API asks, each an ordered range scan over a server's keys.

use std::ops::Bound;

use sled::IVec;
use uuid::Uuid;

use super::*;

impl SledStore {
    /// Why writes can no longer be made durable, once a flush has failed.
    pub fn broken(&self) -> Option<String> {
        self.commit.broken()
    }

    /// After a failed flush nothing more is written: the disk's state is unknown (a later fsync
    /// can succeed after the kernel dropped the pages an earlier one failed to write).
    pub(super) fn writable(&self) -> Result<()> {
        match self.commit.broken() {
            Some(why) => Err(flush_error(format!("an earlier flush failed: {why}"))),
            None => Ok(()),
        }
    }

    /// Fails for a server a failed flush left with unacknowledged writes in memory.
    pub(super) fn confirmed(&self, id: &Uuid) -> Result<()> {
        match self.commit.is_unconfirmed(id) {
            true => Err(StoreError::Unconfirmed(*id)),
            false => Ok(()),
        }
    }

    pub fn server(&self, id: &Uuid) -> Result<Option<Server>> {
        self.confirmed(id)?;
        self.servers
            .get(id.as_bytes())?
            .map(|b| decode_server(&b))
            .transpose()
    }

    /// A page of a server's actions, newest first, each handed to `visit` as it is read in
    /// place from the store's pages. A read that raced a purge of the server fails with
    /// `ServerNotFound`, as if it came after the purge (see `unless_purged`).
    pub fn list_page(
        &self,
        server: &Uuid,
        query: &PageQuery<'_>,
        mut visit: impl FnMut(&ActionView<'_>),
    ) -> Result<PageEnd> {
        let older_than = match query.after {
            After::Start => None,
            After::Cursor(Cursor(key)) => Some(key),
            After::Marker(request_id) => match self.find_record(server, request_id) {
                Ok(Some((key, _))) => Some(key),
                Ok(None) => return Err(StoreError::MarkerNotFound),
                Err(e) => return self.unless_purged(server, Err(e)),
            },
        };
        let filter = ActionFilter {
            older_than,
            since: query.since,
            before: query.before,
        };
        let mut cursor = None;
        let count = self.visit_newest_first(server, &filter, query.limit, |key, action| {
            visit(action);
            cursor = Some(Cursor(*key));
        });
        self.unless_purged(server, count.map(|count| PageEnd { count, cursor }))
    }

    /// The newest action of `server` with this request id, with its events newest first when
    /// `with_events`; None when there is none. Races with purges as [`Store::list_page`].
    pub fn show(
        &self,
        server: &Uuid,
        request_id: &str,
        with_events: bool,
    ) -> Result<Option<(Action, Vec<Event>)>> {
        // One read of the record: its action and its events are one version of it.
        let found = self.find_record(server, request_id).and_then(|found| {
            let Some((_, bytes)) = found else {
                return Ok(None);
            };
            let (action, encoded_events) = split_action(&bytes)?;
            let events = match with_events {
                true => {
                    let mut events = decode_events(encoded_events)?;
                    events.reverse();
                    events
                }
                false => Vec::new(),
            };
            Ok(Some((action, events)))
        });
        self.unless_purged(server, found)
    }

    /// A purge takes the server record first and its history after it, so a read that
    /// overlapped one may have seen part of a history, or an index entry whose action went
    /// before it was read (a storage error). If the server is gone once the read is done, the
    /// read raced the purge: it fails as if it came after.
    fn unless_purged<T>(&self, server: &Uuid, result: Result<T>) -> Result<T> {
        match result {
            Ok(_) | Err(StoreError::Corrupt(_) | StoreError::Io(_)) => {
                if let Ok(false) = self.servers.contains_key(server.as_bytes()) {
                    return Err(StoreError::ServerNotFound(*server));
                }
                result
            }
            other => other,
        }
    }

    /// The newest action of `server` with this request id.
    #[cfg(test)]
    pub(super) fn find_action(
        &self,
        server: &Uuid,
        request_id: &str,
    ) -> Result<Option<(ActionKey, Action)>> {
        self.find_record(server, request_id)?
            .map(|(key, bytes)| Ok((key, decode(&bytes)?)))
            .transpose()
    }

    /// The key and the stored record (undecoded) of the newest action of `server` with this
    /// request id.
    pub(super) fn find_record(
        &self,
        server: &Uuid,
        request_id: &str,
    ) -> Result<Option<(ActionKey, IVec)>> {
        let Some(key) = self.by_request.get(request_key(server, request_id))? else {
            return Ok(None);
        };
        let key =
            keys::as_action_key(&key).ok_or_else(|| StoreError::Corrupt("index entry".into()))?;
        match self.actions.get(key)? {
            Some(bytes) => Ok(Some((key, bytes))),
            None => Err(StoreError::Corrupt(format!(
                "index names a missing action of {server}"
            ))),
        }
    }

    /// The stored records a filter can match, newest first: the bounded range of the scan.
    pub(super) fn filtered_range(
        &self,
        server: &Uuid,
        filter: &ActionFilter,
    ) -> Result<Option<sled::Iter>> {
        let lag = if filter.since.is_some() || filter.before.is_some() {
            Lag::decode(self.lag.get(server.as_bytes())?)
        } else {
            Lag::default()
        };
        // Newest first is key order. Nothing started after `before - min lag` can have been
        // updated by `before`; nothing started before `since - max lag` since `since`.
        let first = match filter.before {
            Some(before) => first_started_at_or_before(server, before.saturating_sub(lag.min)),
            None => first_started_at_or_before(server, i64::MAX),
        };
        let last = match filter.since {
            Some(since) => last_started_at_or_after(server, since.saturating_sub(lag.max)),
            None => last_started_at_or_after(server, i64::MIN),
        };
        let start = match filter.older_than {
            Some(marker) if marker >= first => Bound::Excluded(marker),
            _ => Bound::Included(first),
        };
        let empty = match start {
            Bound::Excluded(s) => s >= last,
            _ => first > last,
        };
        Ok((!empty).then(|| {
            self.actions
                .range::<ActionKey, _>((start, Bound::Included(last)))
        }))
    }

    /// A server's actions, newest first, restricted by `filter`, decoded whole (for tests; the
    /// API reads pages in place with `list_page`).
    #[cfg(test)]
    pub(crate) fn actions_newest_first(
        &self,
        server: &Uuid,
        filter: &ActionFilter,
    ) -> Result<impl Iterator<Item = Result<(ActionKey, Action)>> + '_> {
        let (since, before) = (filter.since, filter.before);
        let range = self.filtered_range(server, filter)?;
        Ok(range.into_iter().flatten().filter_map(move |item| {
            let (key, bytes) = match item {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            let action: Action = match decode(&bytes) {
                Ok(a) => a,
                Err(e) => return Some(Err(e)),
            };
            if !updated_within(action.updated_at, since, before) {
                return None;
            }
            let key = keys::as_action_key(&key)?;
            Some(Ok((key, action)))
        }))
    }

    /// Hands up to `max` of a server's actions matching `filter`, newest first, to `visit`,
    /// read in place from the store's pages. Returns how many it handed over.
    pub(super) fn visit_newest_first(
        &self,
        server: &Uuid,
        filter: &ActionFilter,
        max: usize,
        mut visit: impl FnMut(&ActionKey, &ActionView<'_>),
    ) -> Result<usize> {
        let mut count = 0;
        let Some(range) = self.filtered_range(server, filter)? else {
            return Ok(0);
        };
        for item in range {
            if count >= max {
                break;
            }
            let (key, bytes) = item?;
            let view: ActionView<'_> = decode_view(&bytes)?;
            if !updated_within(view.updated_at, filter.since, filter.before) {
                continue;
            }
            let key = keys::as_action_key(&key)
                .ok_or_else(|| StoreError::Corrupt("action key".into()))?;
            visit(&key, &view);
            count += 1;
        }
        Ok(count)
    }

    /// Every server id in key order.
    pub(super) fn server_ids(&self) -> impl Iterator<Item = Result<(Uuid, Server)>> + '_ {
        self.servers.iter().map(|item| {
            let (k, v) = item?;
            let id = Uuid::from_slice(&k).map_err(|_| StoreError::Corrupt("server key".into()))?;
            Ok((id, decode_server(&v)?))
        })
    }

    /// Up to `max` of a server's actions, oldest first, that come after `after` in that order
    /// (from the oldest when None), each with its events oldest first: exports walk a history
    /// of any length in chunks of bounded size.
    pub fn history_chunk(
        &self,
        server: &Uuid,
        after: Option<&ActionKey>,
        max: usize,
    ) -> Result<Vec<(ActionKey, ActionWithEvents)>> {
        self.confirmed(server)?;
        let newest = first_started_at_or_before(server, i64::MAX);
        let upper = match after {
            Some(key) => Bound::Excluded(*key),
            None => Bound::Included(last_started_at_or_after(server, i64::MIN)),
        };
        self.actions
            .range::<ActionKey, _>((Bound::Included(newest), upper))
            .rev()
            .take(max)
            .map(|item| {
                let (key, bytes) = item?;
                let key = keys::as_action_key(&key)
                    .ok_or_else(|| StoreError::Corrupt("action key".into()))?;
                Ok((key, decode_action_with_events(&bytes)?))
            })
            .collect()
    }

    /// The server after `after` in id order (the first when None).
    pub fn next_server_id(&self, after: Option<&Uuid>) -> Result<Option<(Uuid, Server)>> {
        let next = match after {
            Some(id) => self
                .servers
                .range::<&[u8], _>((Bound::Excluded(&id.as_bytes()[..]), Bound::Unbounded))
                .next(),
            None => self.servers.iter().next(),
        };
        let Some(item) = next else { return Ok(None) };
        let (key, bytes) = item?;
        let uuid = Uuid::from_slice(&key).map_err(|_| StoreError::Corrupt("server key".into()))?;
        Ok(Some((uuid, decode_server(&bytes)?)))
    }

    /// A server's whole history, oldest first, each action with its events oldest first.
    #[cfg(test)]
    pub fn history(&self, server: &Uuid) -> Result<Vec<ActionWithEvents>> {
        let chunk = self.history_chunk(server, None, usize::MAX)?;
        Ok(chunk.into_iter().map(|(_, action)| action).collect())
    }
}
