#!/usr/bin/env python3
"""Time from exec to the ready line of `serve --ephemeral --listen 127.0.0.1:0`, empty and with
a 10,000-action seed (100 servers x 100 actions x 3 events, made with `generate` + `export`).
Medians of RUNS (default 20) starts of the release binary; each service is stopped with SIGTERM.

    cargo build --release && python3 bench/ready.py [RUNS]
"""
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.join(os.path.dirname(__file__), "..", "target", "release", "nova-actions")


def ready_after(extra):
    started = time.perf_counter()
    proc = subprocess.Popen([BIN, "serve", "--ephemeral", "--listen", "127.0.0.1:0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "RUST_LOG": "warn"})
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - started
    assert line.startswith(b"nova-actions listening on http://"), line
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    return elapsed


def seed_file(work):
    store = os.path.join(work, "store")
    subprocess.run([BIN, "generate", "--servers", "100", "--actions", "100", "--events", "3",
                    "--data-dir", store], check=True, stderr=subprocess.DEVNULL)
    path = os.path.join(work, "seed.ndjson")
    subprocess.run([BIN, "export", "--data-dir", store, "--output", path], check=True,
                   stderr=subprocess.DEVNULL)
    return path


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as work:
        seed = seed_file(work)
        for label, extra in (("empty store", []), ("10,000-action seed", ["--seed", seed])):
            times = [ready_after(extra) for _ in range(runs)]
            print(f"{label:<20} median {statistics.median(times) * 1000:7.1f} ms   "
                  f"min {min(times) * 1000:7.1f} ms   max {max(times) * 1000:7.1f} ms   ({runs} starts)")


if __name__ == "__main__":
    main()
