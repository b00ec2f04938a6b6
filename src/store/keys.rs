//! Key encoding. Every key is big-endian and order-preserving; times and sequence numbers are
//! stored inverted, so that a server's actions sort **newest first** and the API's lists are
//! forward scans (sled walks forward much faster than backward).
//!
//! - action (its record holds its event list too): `server uuid | !start_time | !seq`
//! - request-id index: `server uuid | request_id bytes`

use uuid::Uuid;

use crate::timeutil::Micros;

pub const UUID_LEN: usize = 16;
pub const ACTION_KEY_LEN: usize = UUID_LEN + 8 + 8;

pub type ActionKey = [u8; ACTION_KEY_LEN];

/// Flipping the sign bit makes two's-complement times sort as unsigned bytes; inverting all bits
/// then reverses the order.
fn time_bytes(t: Micros) -> [u8; 8] {
    (!((t as u64) ^ (1 << 63))).to_be_bytes()
}

fn time_from_bytes(b: [u8; 8]) -> Micros {
    ((!u64::from_be_bytes(b)) ^ (1 << 63)) as i64
}

pub fn action_key(server: &Uuid, start_time: Micros, seq: u64) -> ActionKey {
    let mut key = [0u8; ACTION_KEY_LEN];
    key[..UUID_LEN].copy_from_slice(server.as_bytes());
    key[UUID_LEN..UUID_LEN + 8].copy_from_slice(&time_bytes(start_time));
    key[UUID_LEN + 8..].copy_from_slice(&(!seq).to_be_bytes());
    key
}

/// The first key (in scan order) of `server`'s actions that started at `start_time` or earlier.
pub fn first_started_at_or_before(server: &Uuid, start_time: Micros) -> ActionKey {
    action_key(server, start_time, u64::MAX)
}

/// The last key (in scan order) of `server`'s actions that started at `start_time` or later.
pub fn last_started_at_or_after(server: &Uuid, start_time: Micros) -> ActionKey {
    action_key(server, start_time, 0)
}

pub fn decode_action_key(key: &[u8]) -> Option<(Uuid, Micros, u64)> {
    if key.len() != ACTION_KEY_LEN {
        return None;
    }
    let server = Uuid::from_slice(&key[..UUID_LEN]).ok()?;
    let time = time_from_bytes(key[UUID_LEN..UUID_LEN + 8].try_into().ok()?);
    let seq = !u64::from_be_bytes(key[UUID_LEN + 8..].try_into().ok()?);
    Some((server, time, seq))
}

pub fn as_action_key(bytes: &[u8]) -> Option<ActionKey> {
    bytes.try_into().ok()
}

/// `server uuid | request_id bytes`: the request-id index. The uuid has a fixed length, so one
/// server's entries never interleave with another's.
pub fn request_key(server: &Uuid, request_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(UUID_LEN + request_id.len());
    key.extend_from_slice(server.as_bytes());
    key.extend_from_slice(request_id.as_bytes());
    key
}

/// Where a server sorts in listings, Nova's `created_at desc, id desc`: `!created_at | !seq |
/// !uuid` (the uuid only makes keys unique). The `servers_by_created` tree holds it alone; the
/// `servers_by_project` tree after `project_prefix(project)`.
pub const SERVER_POSITION_LEN: usize = 8 + 8 + UUID_LEN;

pub type ServerPosition = (Micros, u64, Uuid);

pub fn server_position_key(&(created, seq, id): &ServerPosition) -> [u8; SERVER_POSITION_LEN] {
    let mut key = [0u8; SERVER_POSITION_LEN];
    key[..8].copy_from_slice(&time_bytes(created));
    key[8..16].copy_from_slice(&(!seq).to_be_bytes());
    for (k, b) in key[16..].iter_mut().zip(id.as_bytes()) {
        *k = !b;
    }
    key
}

/// The position at the end of a listing key of either tree.
pub fn decode_server_position(key: &[u8]) -> Option<ServerPosition> {
    let tail = key.get(key.len().checked_sub(SERVER_POSITION_LEN)?..)?;
    let created = time_from_bytes(tail[..8].try_into().ok()?);
    let seq = !u64::from_be_bytes(tail[8..16].try_into().ok()?);
    let mut id = [0u8; UUID_LEN];
    for (i, b) in id.iter_mut().zip(&tail[16..]) {
        *i = !b;
    }
    Some((created, seq, Uuid::from_bytes(id)))
}

/// A project's listing keys start with its length-prefixed id, so that no project's keys
/// interleave with another's.
pub fn project_prefix(project: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + project.len() + SERVER_POSITION_LEN);
    key.extend_from_slice(&(project.len() as u16).to_be_bytes());
    key.extend_from_slice(project.as_bytes());
    key
}

pub fn project_position_key(project: &str, position: &ServerPosition) -> Vec<u8> {
    let mut key = project_prefix(project);
    key.extend_from_slice(&server_position_key(position));
    key
}

/// Whether `candidate` is a newer action than `current` (scan order puts newer first).
pub fn is_newer(candidate: &[u8], current: &[u8]) -> bool {
    candidate < current
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn uuid_of(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn newer_actions_sort_first() {
        let s = uuid_of(7);
        assert!(action_key(&s, 0, 0) < action_key(&s, -1, 0));
        assert!(action_key(&s, -1, 0) < action_key(&s, i64::MIN, 0));
        assert!(action_key(&s, 1, 0) < action_key(&s, 0, u64::MAX));
        assert!(
            action_key(&s, 5, 2) < action_key(&s, 5, 1),
            "later recorded first among equal starts"
        );
        assert!(is_newer(&action_key(&s, 9, 0), &action_key(&s, 8, 0)));
    }

    #[test]
    fn bounds_bracket_every_seq_of_a_time() {
        let s = uuid_of(9);
        let k = action_key(&s, 1_000, 42);
        assert!(
            first_started_at_or_before(&s, 1_000) <= k && k <= last_started_at_or_after(&s, 1_000)
        );
        assert!(last_started_at_or_after(&s, 1_001) < k && k < first_started_at_or_before(&s, 999));
    }

    proptest! {
        #[test]
        fn server_positions_sort_newest_first_and_round_trip(
            a in (any::<i64>(), any::<u64>(), any::<u128>()),
            b in (any::<i64>(), any::<u64>(), any::<u128>()),
            project in "[a-z0-9-]{0,40}",
        ) {
            let pa = (a.0, a.1, uuid_of(a.2));
            let pb = (b.0, b.1, uuid_of(b.2));
            prop_assert_eq!(server_position_key(&pa).cmp(&server_position_key(&pb)), pb.cmp(&pa));
            prop_assert_eq!(decode_server_position(&server_position_key(&pa)), Some(pa));
            let key = project_position_key(&project, &pa);
            prop_assert!(key.starts_with(&project_prefix(&project)));
            prop_assert_eq!(decode_server_position(&key), Some(pa));
        }

        #[test]
        fn key_order_is_server_then_newest_first(
            a in (any::<u128>(), any::<i64>(), any::<u64>()),
            b in (any::<u128>(), any::<i64>(), any::<u64>()),
        ) {
            let ka = action_key(&uuid_of(a.0), a.1, a.2);
            let kb = action_key(&uuid_of(b.0), b.1, b.2);
            // Uuid::from_u128 is big-endian, so u128 order is byte order.
            let expected = a.0.cmp(&b.0).then((b.1, b.2).cmp(&(a.1, a.2)));
            prop_assert_eq!(ka.cmp(&kb), expected);
        }

        #[test]
        fn action_key_round_trips(server in any::<u128>(), time in any::<i64>(), seq in any::<u64>()) {
            let key = action_key(&uuid_of(server), time, seq);
            prop_assert_eq!(decode_action_key(&key), Some((uuid_of(server), time, seq)));
        }

        #[test]
        fn request_keys_of_one_server_share_its_prefix(server in any::<u128>(), rid in ".{0,40}") {
            let key = request_key(&uuid_of(server), &rid);
            prop_assert!(key.starts_with(uuid_of(server).as_bytes()));
            prop_assert_eq!(&key[UUID_LEN..], rid.as_bytes());
        }
    }
}
