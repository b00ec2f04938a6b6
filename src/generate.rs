//! Synthetic histories for benchmarks: N servers × M actions × K events with realistic names,
//! hosts, times, failures and deleted servers, written straight into a store.

use uuid::Uuid;

use crate::model::{Action, Event, Server, ServerHistory};
use crate::store::{ImportCounts, Store, StoreError};
use crate::timeutil::Micros;

const ACTIONS: &[&str] = &[
    "create",
    "stop",
    "start",
    "reboot",
    "pause",
    "unpause",
    "suspend",
    "resume",
    "resize",
    "confirmResize",
    "migrate",
    "live-migration",
    "rebuild",
    "lock",
    "unlock",
    "shelve",
    "unshelve",
    "attach_interface",
];
const PROJECTS: usize = 200;
const HOSTS: usize = 64;
/// Actions imported per call, so memory stays flat whatever M is.
const CHUNK: usize = 1000;

/// A small, fast, reproducible generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub servers: u64,
    pub actions_per_server: u64,
    pub events_per_action: u64,
    pub seed: u64,
    /// First action's start time; later ones follow at ~1 minute intervals.
    pub start: Micros,
}

/// The id of the `n`th generated server: stable, so benchmarks can name their target.
pub fn server_id(n: u64) -> Uuid {
    Uuid::from_u128(0xbe00_0000_0000_4000_8000_0000_0000_0000 | u128::from(n))
}

fn project(n: u64) -> String {
    format!(
        "{:032x}",
        0x7072_6f6a_u128 << 96 | u128::from(n % PROJECTS as u64)
    )
}

fn server(n: u64, rng: &mut Rng, start: Micros) -> Server {
    let deleted = rng.below(20) == 0;
    Server {
        project_id: project(n),
        user_id: Some(format!("user-{}", n % 1000)),
        host: Some(format!("compute-{}", rng.below(HOSTS as u64))),
        created_at: Some(start),
        deleted,
        deleted_at: deleted.then_some(start + 86_400_000_000),
        name: Some(format!("server-{n}")),
        status: Some(if n % 10 == 3 { "SHUTOFF" } else { "ACTIVE" }.into()),
        updated_at: Some(start + if deleted { 86_400_000_000 } else { 60_000_000 }),
        seq: 0,
    }
}

fn action(n: u64, i: u64, k: u64, rng: &mut Rng, start: Micros) -> (Action, Vec<Event>) {
    let name = if i == 0 {
        "create"
    } else {
        ACTIONS[rng.below(ACTIONS.len() as u64) as usize]
    };
    let failed = rng.below(50) == 0;
    let host = format!("compute-{}", rng.below(HOSTS as u64));
    let mut events = Vec::with_capacity(k as usize);
    let mut t = start;
    for e in 0..k {
        let begin = t + 1_000_000 + rng.below(500_000) as i64;
        t = begin + 1_000_000 + rng.below(5_000_000) as i64;
        let error = failed && e + 1 == k;
        events.push(Event {
            event: if e == 0 { format!("compute_{}_instance", name.replace('-', "_")) } else { format!("compute_{name}_step_{e}") },
            start_time: Some(begin),
            finish_time: Some(t),
            result: Some(if error { "Error" } else { "Success" }.to_string()),
            traceback: error.then(|| {
                format!("Traceback (most recent call last):\n  File \"/opt/stack/nova/nova/compute/manager.py\", line {}, in _{name}\nnova.exception.InstanceFaultRollback: {name} failed on {host}\n", 1000 + rng.below(9000))
            }),
            host: Some(host.clone()),
            details: error.then(|| format!("{name} failed on {host}")),
            created_at: None,
        });
    }
    let action = Action {
        request_id: format!(
            "req-{:08x}-{:04x}-4{:03x}-8000-{:012x}",
            n as u32,
            (i >> 16) as u16,
            (i & 0xfff) as u16,
            i
        ),
        action: name.to_string(),
        user_id: Some(format!("user-{}", n % 1000)),
        project_id: Some(project(n)),
        start_time: start,
        finish_time: None,
        updated_at: Some(t),
        message: failed.then(|| "Error".to_string()),
        created_at: None,
    };
    (action, events)
}

/// Writes the whole shape, calling `progress` after each chunk; durable when it returns.
pub fn generate(
    store: &Store,
    shape: Shape,
    mut progress: impl FnMut(&ImportCounts),
) -> Result<ImportCounts, StoreError> {
    let mut rng = Rng::new(shape.seed);
    let mut counts = ImportCounts::default();
    for n in 0..shape.servers {
        let uuid = server_id(n);
        let server = server(n, &mut rng, shape.start);
        let mut i = 0;
        let mut t = shape.start;
        loop {
            let take = (shape.actions_per_server - i).min(CHUNK as u64);
            let mut actions = Vec::with_capacity(take as usize);
            for _ in 0..take {
                actions.push(action(n, i, shape.events_per_action, &mut rng, t));
                t += 60_000_000 + rng.below(30_000_000) as i64;
                i += 1;
            }
            let chunk = ServerHistory {
                uuid,
                server: server.clone(),
                actions,
            };
            let mut c = store.import_server(&chunk)?;
            if i > take {
                c.servers = 0;
            }
            counts.add(c);
            progress(&counts);
            if i >= shape.actions_per_server {
                break;
            }
        }
    }
    store.durable()?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_the_requested_shape_reproducibly() {
        let dir = std::env::temp_dir().join(format!("nova-actions-gen-{}", Uuid::new_v4()));
        let store = Store::open(&dir).unwrap();
        let shape = Shape {
            servers: 3,
            actions_per_server: 2500,
            events_per_action: 3,
            seed: 7,
            start: 1_600_000_000_000_000,
        };
        let counts = generate(&store, shape, |_| ()).unwrap();
        assert_eq!(
            (counts.servers, counts.actions, counts.events),
            (3, 7500, 22_500)
        );
        let mut newest: Vec<Action> = store
            .history(&server_id(1))
            .unwrap()
            .into_iter()
            .map(|(action, _)| action)
            .collect();
        newest.reverse();
        assert_eq!(newest.len(), 2500);
        assert!(newest.windows(2).all(|w| w[0].start_time > w[1].start_time));
        assert_eq!(newest.last().unwrap().action, "create");
        let again = {
            let mut rng = Rng::new(7);
            server(0, &mut rng, 0)
        };
        assert_eq!(
            store.server(&server_id(0)).unwrap().unwrap().project_id,
            again.project_id
        );
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
