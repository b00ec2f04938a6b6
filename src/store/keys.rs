//! Key encoding. Every key is big-endian and order-preserving, so that sled's byte order is the
//! order the API asks for: a server's actions by (start_time, seq), an action's events by seq.

use uuid::Uuid;

use crate::timeutil::Micros;

pub const UUID_LEN: usize = 16;
pub const ACTION_KEY_LEN: usize = UUID_LEN + 8 + 8;
pub const EVENT_KEY_LEN: usize = ACTION_KEY_LEN + 8;

/// `server uuid | start_time | seq`: the key of an action in the `actions` tree.
pub type ActionKey = [u8; ACTION_KEY_LEN];

/// Flipping the sign bit makes two's-complement times sort as unsigned bytes.
pub fn time_bytes(t: Micros) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_from_bytes(b: [u8; 8]) -> Micros {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

pub fn action_key(server: &Uuid, start_time: Micros, seq: u64) -> ActionKey {
    let mut key = [0u8; ACTION_KEY_LEN];
    key[..UUID_LEN].copy_from_slice(server.as_bytes());
    key[UUID_LEN..UUID_LEN + 8].copy_from_slice(&time_bytes(start_time));
    key[UUID_LEN + 8..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// The smallest action key of `server` that starts at `start_time` or later.
pub fn action_key_floor(server: &Uuid, start_time: Micros) -> ActionKey {
    action_key(server, start_time, 0)
}

/// The largest action key of `server` that starts at `start_time` or earlier.
pub fn action_key_ceil(server: &Uuid, start_time: Micros) -> ActionKey {
    action_key(server, start_time, u64::MAX)
}

pub fn decode_action_key(key: &[u8]) -> Option<(Uuid, Micros, u64)> {
    if key.len() != ACTION_KEY_LEN {
        return None;
    }
    let server = Uuid::from_slice(&key[..UUID_LEN]).ok()?;
    let time = time_from_bytes(key[UUID_LEN..UUID_LEN + 8].try_into().ok()?);
    let seq = u64::from_be_bytes(key[UUID_LEN + 8..].try_into().ok()?);
    Some((server, time, seq))
}

pub fn as_action_key(bytes: &[u8]) -> Option<ActionKey> {
    bytes.try_into().ok()
}

pub fn event_key(action: &ActionKey, seq: u64) -> [u8; EVENT_KEY_LEN] {
    let mut key = [0u8; EVENT_KEY_LEN];
    key[..ACTION_KEY_LEN].copy_from_slice(action);
    key[ACTION_KEY_LEN..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// `server uuid | request_id bytes`: the request-id index. The uuid has a fixed length, so one
/// server's entries never interleave with another's.
pub fn request_key(server: &Uuid, request_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(UUID_LEN + request_id.len());
    key.extend_from_slice(server.as_bytes());
    key.extend_from_slice(request_id.as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn uuid_of(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn negative_times_sort_before_positive() {
        let s = uuid_of(7);
        assert!(action_key(&s, -1, 0) < action_key(&s, 0, 0));
        assert!(action_key(&s, i64::MIN, 0) < action_key(&s, -1, 0));
        assert!(action_key(&s, 0, u64::MAX) < action_key(&s, 1, 0));
    }

    #[test]
    fn floor_and_ceil_bracket_every_seq() {
        let s = uuid_of(9);
        let k = action_key(&s, 1_000, 42);
        assert!(action_key_floor(&s, 1_000) <= k && k <= action_key_ceil(&s, 1_000));
        assert!(action_key_ceil(&s, 999) < k && k < action_key_floor(&s, 1_001));
    }

    #[test]
    fn event_keys_stay_under_their_action() {
        let a = action_key(&uuid_of(1), 5, 5);
        let b = action_key(&uuid_of(1), 5, 6);
        assert!(event_key(&a, u64::MAX) < event_key(&b, 0));
        assert!(event_key(&a, 3).starts_with(&a));
    }

    proptest! {
        #[test]
        fn key_order_is_server_time_seq_order(
            a in (any::<u128>(), any::<i64>(), any::<u64>()),
            b in (any::<u128>(), any::<i64>(), any::<u64>()),
        ) {
            let ka = action_key(&uuid_of(a.0), a.1, a.2);
            let kb = action_key(&uuid_of(b.0), b.1, b.2);
            // Uuid::from_u128 is big-endian, so u128 order is byte order.
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
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
