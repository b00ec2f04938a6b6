#!/usr/bin/env bash
# Soak: durable writes (32 clients), imports and reads against one service for SECONDS, with the
# watchdog of examples/soak.rs (an acknowledged write over 2 s, or any request unanswered past its
# limit, fails the run; a stall dumps the service's threads with gdb). Then kill -9, a restart,
# and a check that every acknowledged action is there.
#   bash bench/soak.sh [SECONDS] [RUNS]       (default 600 s, 1 run; release build)
#   SOAK_PROFILE=debug bash bench/soak.sh 60  (the binaries cargo test built: what .ci/run does)
# Output (stacks, service logs, state) goes to SOAK_DIR (default target/soak).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
runs=${2:-1}
profile=${SOAK_PROFILE:-release}
out=${SOAK_DIR:-target/soak}
if [ "$profile" = release ]; then
  cargo build --release --bin nova-actions --example soak
fi
bin=target/$profile/nova-actions
soak=target/$profile/examples/soak
command -v gdb >/dev/null || echo "soak: gdb is missing: a stall will be reported without stacks" >&2
mkdir -p "$out"

start_service() { # data dir, log; sets pid and addr
  "$bin" serve --data-dir "$1" --listen 127.0.0.1:0 >"$2.ready" 2>>"$2" &
  pid=$!
  for _ in $(seq 1 600); do
    if grep -q listening "$2.ready" 2>/dev/null; then break; fi
    kill -0 "$pid" 2>/dev/null || { echo "soak: the service did not start (see $2)" >&2; exit 1; }
    sleep 0.05
  done
  addr=$(sed -n 's|.*http://||p' "$2.ready")
  [ -n "$addr" ] || { echo "soak: no ready line (see $2)" >&2; exit 1; }
}

failed=0
for run in $(seq 1 "$runs"); do
  data=$(mktemp -d)
  log="$out/service-$run.log"
  : >"$log"
  start_service "$data" "$log"
  echo "== soak run $run of $runs: $seconds s against $addr (pid $pid, $profile build)"
  if ! SOAK_STACKS="$out/stacks-$run.txt" "$soak" run "$addr" "$seconds" "$pid" "$out/state-$run"; then
    failed=1
  fi
  echo "rss of the service: $(( $(awk '/VmHWM/ {print $2}' /proc/$pid/status) / 1024 )) MB peak"
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  start_service "$data" "$log"
  if ! "$soak" verify "$addr" "$out/state-$run"; then failed=1; fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$data"
done
exit $failed
