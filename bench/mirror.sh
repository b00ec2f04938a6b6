#!/usr/bin/env bash
# The mirror's first-sync time and the load it puts on Nova, against a real Nova 34
# (scripts/nova-oracle; run its setup.sh first). Seeds SERVERS servers x ACTIONS actions x
# EVENTS events, then runs `nova-actions sync --once` (release build) four times:
#   1. the first pass (everything),
#   2. a pass with nothing new and no sweep due,
#   3. a pass after CHANGED servers each got a new action through Nova's API path (server saved),
#   4. a sweep with nothing new (every live server's action list read).
# For each: wall time, upstream requests (from the sync log) and the CPU time Nova's API
# processes spent answering (from /proc).
#
#   bash bench/mirror.sh [SERVERS=1000] [ACTIONS=10] [EVENTS=2] [CHANGED=50]
set -euo pipefail
cd "$(dirname "$0")/.."

servers=${1:-1000}
actions=${2:-10}
events=${3:-2}
changed=${4:-50}
oracle=scripts/nova-oracle
work=$(mktemp -d /tmp/nova-actions-mirror-bench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
trap 'bash $oracle/stop.sh "$work/nova" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

cargo build --release --quiet
bin=target/release/nova-actions

echo "starting Nova 34 on 127.0.0.1:$port"
bash $oracle/run.sh "$port" "$work/nova" --fresh --workers 2 --threads 4 >/dev/null
seeded=$(date +%s.%N)
"$oracle/seed.py" --state-dir "$work/nova" generate --instances "$servers" --actions "$actions" \
  --events "$events" --project proj-bench >/dev/null
echo "seeded $servers servers x $actions actions x $events events in $(python3 -c "print(round($(date +%s.%N)-$seeded,1))") s"

# CPU seconds (user + system) of Nova's API: the gunicorn master and its workers.
nova_cpu() {
  local master pids total=0
  master=$(cat "$work/nova/run.pid")
  pids="$master $(pgrep -P "$master" | tr '\n' ' ')"
  for p in $pids; do
    read -r -a f <"/proc/$p/stat" || continue
    total=$(( total + f[13] + f[14] ))
  done
  python3 -c "print($total / $(getconf CLK_TCK))"
}

pass() {
  local label=$1 sweep=$2 before after t0 t1 log
  before=$(nova_cpu)
  t0=$(date +%s.%N)
  log=$(RUST_LOG=info NOVA_ACTIONS__SYNC__ENDPOINT="http://127.0.0.1:$port/v2.1" \
    NOVA_ACTIONS__SYNC__TOKEN=admin:admin NOVA_ACTIONS__SYNC__OVERLAP=0s \
    NOVA_ACTIONS__SYNC__SWEEP_INTERVAL="$sweep" \
    "$bin" sync --once --data-dir "$work/store" 2>&1 | grep "sync pass done")
  t1=$(date +%s.%N)
  after=$(nova_cpu)
  python3 - "$label" "$t0" "$t1" "$before" "$after" "$log" <<'PY'
import re, sys
label, t0, t1, before, after, log = sys.argv[1:]
copied = re.search(r"(\d+) servers, (\d+) actions, (\d+) events copied; (\d+) upstream requests", log)
s, a, e, r = copied.groups()
print(f"{label:<34} {float(t1)-float(t0):7.1f} s wall  {r:>6} requests  "
      f"Nova CPU {float(after)-float(before):6.1f} s   copied {s} servers, {a} actions, {e} events")
PY
}

pass "1. first pass" 1h
pass "2. nothing new, no sweep" 1h
ids=$("$bin" export --data-dir "$work/store" 2>/dev/null | python3 -c '
import json, sys
ids = [json.loads(line)["uuid"] for line in sys.stdin]
print("\n".join(ids[:int(sys.argv[1])]))' "$changed")

for id in $ids; do
  echo "act start --instance $id --action reboot --request-id req-bench-$id --task-state rebooting"
done | "$oracle/seed.py" --state-dir "$work/nova" batch - >/dev/null
pass "3. $changed servers with a new action" 1h
pass "4. sweep (actions since last sweep)" 0s
