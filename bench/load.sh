#!/usr/bin/env bash
# One command for the load benchmark (see BENCHMARKS.md): builds the release binaries, installs
# wrk if missing, and runs bench/load.py, which prints a table of medians.
#   bash bench/load.sh                         # throughput, scaling, writes, import, start-up
#   BENCH_FOOTPRINT=1 bash bench/load.sh       # also the 10,000,000-action store (slow, ~15 GB)
#   BENCH_ONLY=throughput bash bench/load.sh   # one section
#   BENCH_BACKEND=postgres bash bench/load.sh  # the same on PostgreSQL (a throwaway server)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --bin nova-actions --example bare --example write_load
exec python3 bench/load.py
