#!/usr/bin/env bash
# Instructions per request, counted by callgrind: repeatable whatever else the machine does.
# Serves a generated 10,000-action server (10 events each) with one worker under
# `valgrind --tool=callgrind`, sends N1 and then N2 identical requests in two runs, and prints
# (Ir(N2) - Ir(N1)) / (N2 - N1), so that start-up cancels out.
#   bash bench/callgrind.sh [list|show] [N1] [N2]       (default: list 500 1500)
# Needs valgrind (Debian package) and the release binary (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-list}
n1=${2:-500}
n2=${3:-1500}
bin=${BIN:-target/release/nova-actions}
work=${CALLGRIND_WORK:-/tmp/nova-actions-callgrind}
port=${CALLGRIND_PORT:-18222}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
mkdir -p "$work"
if [ ! -d "$work/base" ]; then
    RUST_LOG=warn "$bin" generate --servers 1 --actions 10000 --events 10 --data-dir "$work/base" >/dev/null
fi

instructions() {
    local n=$1
    rm -rf "$work/store" "$work/out"
    cp -r "$work/base" "$work/store"
    # Counting starts once the service answers, so that start-up (whose cost varies with
    # what sled finds on disk) does not enter the difference.
    NOVA_ACTIONS__SERVER__WORKERS=1 RUST_LOG=warn valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$work/out" "$bin" serve --listen "127.0.0.1:$port" \
        --data-dir "$work/store" 2>"$work/valgrind.log" &
    local pid=$!
    for _ in $(seq 1200); do
        curl -s -o /dev/null "http://127.0.0.1:$port/healthcheck" && break
        sleep 0.5
    done
    callgrind_control -i on "$pid" >/dev/null
    KIND=$kind N=$n PORT=$port python3 - <<'PY'
import http.client, json, os
port = int(os.environ["PORT"])
c = http.client.HTTPConnection("127.0.0.1", port)
headers = {"X-Auth-Token": "admin:admin", "OpenStack-API-Version": "compute 2.84"}
server = "be000000-0000-4000-8000-000000000000"
base = f"/v2.1/servers/{server}/os-instance-actions"
c.request("GET", base + "?limit=1", headers=headers)
newest = json.loads(c.getresponse().read())["instanceActions"][0]["request_id"]
path = base + "?limit=50" if os.environ["KIND"] == "list" else f"{base}/{newest}"
for _ in range(int(os.environ["N"])):
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
PY
    kill -INT "$pid"
    wait "$pid" || true
    callgrind_annotate "$work/out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

a=$(instructions "$n1")
b=$(instructions "$n2")
echo "$kind: $(( (b - a) / (n2 - n1) )) instructions per request ($n1 requests: $a, $n2: $b)"
