//! Listing servers: two index trees keyed by listing position (Nova's `created_at desc, id
//! desc`), one over all servers and one per project, so that a page is a forward range scan.
//!
//! Each entry holds a copy of the server's record, so that a filtering scan (a name lookup over
//! every server) reads the index alone. A listing confirms each server it returns against the
//! record and skips an entry that no longer matches it. That lets the writes that are not one
//! transaction (import, purge) add the new entry before the record and drop the old one after
//! it: a crash in between leaves at most a stale entry, which is skipped, never a server
//! missing from the index.

use std::ops::Bound;

use sled::transaction::TransactionalTree;
use uuid::Uuid;

use super::*;
use crate::model::ServerView;
use crate::store::codec::{decode_server, decode_server_view};
use crate::store::keys::{
    ServerPosition, decode_server_position, project_position_key, project_prefix,
    server_position_key,
};

fn position_of(id: &Uuid, server: &Server) -> ServerPosition {
    let (created, seq) = server.list_position();
    (created, seq, *id)
}

impl SledStore {
    /// Servers in listing order after `after` (from the first when None), of `project` or of
    /// all projects, that `admit` accepts, until `limit` are found or the listing ends. `admit`
    /// sees the copy of each record the index holds, read in place; only the servers it
    /// accepts are read from their records (and skipped if the copy is stale).
    pub fn find_servers(
        &self,
        project: Option<&str>,
        after: Option<&ServerPosition>,
        limit: usize,
        admit: &dyn Fn(&ServerView<'_>) -> bool,
    ) -> Result<Vec<(Uuid, Server)>> {
        let (tree, prefix) = match project {
            Some(p) => (&self.servers_by_project, project_prefix(p)),
            None => (&self.servers_by_created, Vec::new()),
        };
        let start = match after {
            Some(position) => {
                let mut key = prefix.clone();
                key.extend_from_slice(&server_position_key(position));
                Bound::Excluded(key)
            }
            None => Bound::Included(prefix.clone()),
        };
        let mut found = Vec::with_capacity(limit.min(1000));
        for item in tree.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
            let (key, copy) = item?;
            if found.len() == limit || !key.starts_with(&prefix) {
                break;
            }
            let position = decode_server_position(&key)
                .ok_or_else(|| StoreError::Corrupt("server listing key".into()))?;
            let view = decode_server_view(&copy)?;
            if !admit(&view) {
                continue;
            }
            let id = position.2;
            match self.server(&id)? {
                Some(server) if position_of(&id, &server) == position && server.view() == view => {
                    found.push((id, server));
                }
                _ => continue, // stale: see the module comment
            }
        }
        Ok(found)
    }

    /// A named value kept with the data (see `Store::meta`).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.meta
            .get(key)?
            .map(|v| String::from_utf8(v.to_vec()).map_err(|_| StoreError::Corrupt(key.into())))
            .transpose()
    }

    /// Sets a named value, durably.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.writable()?;
        self.meta.insert(key, value.as_bytes())?;
        self.durable()
    }

    /// Where `id` sorts in listings (a marker), None when there is no such server.
    pub fn server_position(&self, id: &Uuid) -> Result<Option<ServerPosition>> {
        Ok(self.server(id)?.map(|s| position_of(id, &s)))
    }

    /// Adds `server`'s index entries (before its record is written).
    pub(super) fn index_server(&self, id: &Uuid, server: &Server) -> Result<()> {
        let position = position_of(id, server);
        let copy = encode_server(server);
        self.servers_by_created
            .insert(server_position_key(&position), copy.clone())?;
        self.servers_by_project
            .insert(project_position_key(&server.project_id, &position), copy)?;
        Ok(())
    }

    /// Drops `old`'s index entries unless `new` (the record now stored) has the same ones.
    pub(super) fn unindex_server(
        &self,
        id: &Uuid,
        old: &Server,
        new: Option<&Server>,
    ) -> Result<()> {
        // A new record at the same keys replaced the copies already (`index_server`).
        let position = position_of(id, old);
        let moved = new.is_none_or(|n| position_of(id, n) != position);
        if moved {
            self.servers_by_created
                .remove(server_position_key(&position))?;
        }
        if moved || new.is_some_and(|n| n.project_id != old.project_id) {
            self.servers_by_project
                .remove(project_position_key(&old.project_id, &position))?;
        }
        Ok(())
    }

    /// Builds both index trees from the server records: the layout-5 migration.
    pub(super) fn build_server_index(&self) -> Result<u64> {
        let mut indexed = 0;
        for item in self.servers.iter() {
            let (key, bytes) = item?;
            let id =
                Uuid::from_slice(&key).map_err(|_| StoreError::Corrupt("server key".into()))?;
            match decode_server(&bytes) {
                Ok(server) => self.index_server(&id, &server)?,
                // Reading it fails as before; the rest of the store stays usable.
                Err(e) => log::error!("server {id} is not indexed for listing: {e}"),
            }
            indexed += 1;
        }
        Ok(indexed)
    }
}

/// The index changes of a server write made in one transaction.
pub(super) fn reindex_in(
    (by_created, by_project): (&TransactionalTree, &TransactionalTree),
    id: &Uuid,
    old: Option<&Server>,
    new: Option<&Server>,
) -> TxResult<()> {
    if let Some(old) = old {
        let position = position_of(id, old);
        by_created.remove(&server_position_key(&position)[..])?;
        by_project.remove(project_position_key(&old.project_id, &position))?;
    }
    if let Some(new) = new {
        let position = position_of(id, new);
        let copy = encode_server(new);
        by_created.insert(&server_position_key(&position)[..], copy.clone())?;
        by_project.insert(project_position_key(&new.project_id, &position), copy)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServerV1;
    use crate::store::codec::encode;

    /// A layout-5 store (what the previous release wrote: server records without names, no
    /// listing trees) opens as layout 6 with every server listed in Nova's order.
    #[test]
    fn a_layout_5_store_gets_its_listing_indexes_on_open() {
        let dir = std::env::temp_dir().join(format!("nova-actions-unit-{}", Uuid::new_v4()));
        let ids: Vec<Uuid> = (1..=3).map(Uuid::from_u128).collect();
        {
            let db = sled::open(&dir).unwrap();
            db.insert("format", &[5u8]).unwrap();
            let servers = db.open_tree("servers").unwrap();
            for (n, id) in ids.iter().enumerate() {
                let v1 = ServerV1 {
                    project_id: if n == 1 { "q".into() } else { "p".into() },
                    user_id: None,
                    host: None,
                    created_at: Some(n as i64),
                    deleted: false,
                    deleted_at: None,
                };
                servers.insert(id.as_bytes(), encode(&v1)).unwrap();
            }
            db.flush().unwrap();
        }
        let store = SledStore::open(&dir).unwrap();
        assert_eq!(store.db.get("format").unwrap().unwrap().as_ref(), [6]);
        let listed = |project| -> Vec<Uuid> {
            let page = store.find_servers(project, None, 10, &|_| true).unwrap();
            page.into_iter().map(|(id, _)| id).collect()
        };
        assert_eq!(listed(None), vec![ids[2], ids[1], ids[0]], "newest first");
        assert_eq!(listed(Some("p")), vec![ids[2], ids[0]]);
        assert_eq!(listed(Some("q")), vec![ids[1]]);
        // Moving a server to another project moves its project entry.
        let moved = Server {
            project_id: "p".into(),
            ..store.server(&ids[1]).unwrap().unwrap()
        };
        let history = crate::model::ServerHistory {
            uuid: ids[1],
            server: moved,
            actions: vec![],
        };
        store.import_server(&history).unwrap();
        assert_eq!(listed(Some("q")), Vec::<Uuid>::new());
        assert_eq!(listed(Some("p")), vec![ids[2], ids[1], ids[0]]);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
