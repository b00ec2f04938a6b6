#!/usr/bin/env bash
# A service for a shell test: start it, read its one ready line, use it, stop it (the temporary
# store goes with it). NOVA_ACTIONS_BIN names the binary (default: nova-actions on PATH).
set -euo pipefail
bin=${NOVA_ACTIONS_BIN:-nova-actions}
seed=${SEED:-$(dirname "$0")/../tests/fixtures/golden/fixture.ndjson}

coproc NOVA { exec "$bin" serve --ephemeral --seed "$seed" --listen 127.0.0.1:0; }
read -r ready <&"${NOVA[0]}"; url=${ready##* }           # "nova-actions listening on http://…"
trap 'kill "$NOVA_PID"; wait "$NOVA_PID" || true' EXIT

curl -fsS -H "X-Auth-Token: user-a:proj-a" -H "OpenStack-API-Version: compute 2.84" \
  "$url/v2.1/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions" \
  | grep -q '"instanceActions"'
echo "ok: $url answered the seeded history"
