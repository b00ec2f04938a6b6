//! How sled 0.34's resident memory and start-up time grow with the number of records, for the
//! same bytes: the experiment behind the store-layout plan in BENCHMARKS.md ("fewer, larger
//! records"). Writes `bytes` of values as records of `size` bytes each, closes the store, opens it
//! once to leave a snapshot (as the service's commands do), then opens it again and reports the
//! time to open and the resident memory after a read of every 1,000th record.
//!
//!     cargo run --release --example sled_records -- DIR TOTAL_MB RECORD_BYTES
//!
//! Prints one line: records, record size, open seconds, RSS after open and after the reads.

use std::time::Instant;

fn rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn open(dir: &str) -> sled::Db {
    sled::Config::new()
        .path(dir)
        .cache_capacity(64 << 20)
        .flush_every_ms(None)
        .open()
        .expect("open")
}

/// Keys shaped like the store's: a server (16 bytes) and a position in its history (16 bytes),
/// 100 records per server.
fn key(i: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&(i / 100).to_be_bytes());
    k[16..24].copy_from_slice(&(!(i % 100)).to_be_bytes());
    k
}

/// Runs in a process of its own, so that nothing the writing left in memory is counted.
fn measure(dir: &str, records: u64) {
    let started = Instant::now();
    let db = open(dir);
    let opened = started.elapsed().as_secs_f64();
    let after_open = rss_mb();
    for i in (0..records).step_by(1000) {
        assert!(db.get(key(i)).expect("get").is_some());
    }
    println!(
        "open_s={opened:.3} rss_after_open_mb={after_open} rss_after_reads_mb={}",
        rss_mb()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, dir, records] = &args[..] {
        if flag == "--measure" {
            return measure(dir, records.parse().expect("records"));
        }
    }
    let [dir, total_mb, size] = &args[..] else {
        eprintln!("usage: sled_records DIR TOTAL_MB RECORD_BYTES");
        std::process::exit(2);
    };
    let size: usize = size.parse().expect("RECORD_BYTES");
    let records = total_mb.parse::<u64>().expect("TOTAL_MB") * (1 << 20) / size as u64;
    let _ = std::fs::remove_dir_all(dir);
    {
        let db = open(dir);
        let value = vec![0x5a_u8; size];
        for i in 0..records {
            db.insert(key(i), value.as_slice()).expect("insert");
        }
        db.flush().expect("flush");
    }
    drop(open(dir));
    print!("records={records} size={size} ");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let status = std::process::Command::new(std::env::current_exe().expect("own path"))
        .args(["--measure", dir, &records.to_string()])
        .status()
        .expect("measure");
    assert!(status.success());
}
