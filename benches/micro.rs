//! Micro-benchmarks of the pieces a list request is made of: key encoding, the JSON writer, and
//! a page scan over a 10,000-action history. `cargo bench --bench micro`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use nova_actions::api::version::Version;
use nova_actions::api::view::write_action;
use nova_actions::generate::{Shape, generate, server_id};
use nova_actions::model::ActionView;
use nova_actions::store::keys::{action_key, decode_action_key};
use nova_actions::store::{After, PageQuery, Store};

fn keys(c: &mut Criterion) {
    let server = server_id(7);
    c.bench_function("action_key encode + decode", |b| {
        b.iter(|| {
            decode_action_key(&action_key(
                black_box(&server),
                black_box(1_524_619_589_000_000),
                black_box(42),
            ))
        });
    });
}

fn json(c: &mut Criterion) {
    let view = ActionView {
        request_id: "req-a1000000-0000-4000-8000-000000000004",
        action: "resize",
        user_id: Some("user-a"),
        project_id: Some("6f70656e737461636b20342065766572"),
        start_time: 1_524_619_800_000_000,
        finish_time: None,
        updated_at: Some(1_524_619_820_000_000),
        message: Some("Error"),
        created_at: None,
    };
    let instance = "a0000000-0000-4000-8000-000000000001";
    let mut out = Vec::with_capacity(400 * 50);
    c.bench_function("write 50 list items (2.84)", |b| {
        b.iter(|| {
            out.clear();
            for _ in 0..50 {
                write_action(&mut out, instance, black_box(&view), Version(84), |_| ());
            }
            black_box(out.len())
        });
    });
    let traceback = "Traceback (most recent call last):\n  File \"/opt/stack/nova/nova/compute/manager.py\", line 5821, in _resize_instance\n    disk_info = self.driver.migrate_disk_and_power_off(\n";
    c.bench_function("write_json_str traceback", |b| {
        b.iter(|| {
            out.clear();
            nova_actions::pytext::write_json_str(&mut out, black_box(traceback));
            black_box(out.len())
        });
    });
}

fn scan(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("nova-actions-bench-{}", std::process::id()));
    let store = Store::open(&dir).expect("temporary store");
    let shape = Shape {
        servers: 1,
        actions_per_server: 10_000,
        events_per_action: 3,
        seed: 1,
        start: 1_500_000_000_000_000,
    };
    generate(&store, shape, |_| ()).expect("generated");
    let server = server_id(0);
    let query = |after, since| PageQuery {
        after,
        since,
        before: None,
        limit: 50,
    };
    let mut middle = String::new();
    let to_middle = PageQuery {
        limit: 5_001,
        ..query(After::Start, None)
    };
    store
        .list_page(&server, &to_middle, |a| middle = a.request_id.to_string())
        .unwrap();
    let page = |query: &PageQuery<'_>| {
        store.list_page(&server, query, |a| {
            black_box(a.request_id);
        })
    };
    c.bench_function("page of 50, newest", |b| {
        b.iter(|| page(&query(After::Start, None)).unwrap());
    });
    c.bench_function("page of 50 after a marker in the middle", |b| {
        b.iter(|| page(&query(After::Marker(&middle), None)).unwrap());
    });
    c.bench_function("page of 50, changes-since the last hour", |b| {
        let since = Some(shape.start + 10_000 * 75_000_000 - 3_600_000_000);
        b.iter(|| page(&query(After::Start, since)).unwrap());
    });
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, keys, json, scan);
criterion_main!(benches);
