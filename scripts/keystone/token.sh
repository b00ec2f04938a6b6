#!/usr/bin/env bash
# Print a Keystone token (the X-Subject-Token of POST /v3/auth/tokens) for a
# test user (password "secret"; the bootstrap user "admin" has password "admin").
#
#   token.sh USER PROJECT      project-scoped (project by name, domain Default)
#   token.sh USER              unscoped (same as --unscoped)
#   token.sh USER --unscoped   explicitly unscoped
#   token.sh USER --system     system-scoped (system "all"); admin-x and admin have system roles
#
#   KEYSTONE_PORT [35357]  KEYSTONE_URL [http://127.0.0.1:$KEYSTONE_PORT/v3]
#   KEYSTONE_PASSWORD      override the password
set -euo pipefail

usage() { echo "usage: $0 USER [PROJECT|--unscoped|--system]" >&2; exit 2; }
(( $# >= 1 && $# <= 2 )) || usage
user="$1"; scope="${2:---unscoped}"
[[ -n "$user" ]] || usage
KEYSTONE_PORT="${KEYSTONE_PORT:-35357}"
KEYSTONE_URL="${KEYSTONE_URL:-http://127.0.0.1:${KEYSTONE_PORT}/v3}"
if [[ -z "${KEYSTONE_PASSWORD:-}" ]]; then
  if [[ "$user" == admin ]]; then KEYSTONE_PASSWORD=admin; else KEYSTONE_PASSWORD=secret; fi
fi
PY="${KEYSTONE_HOME:-/tmp/nova-actions-keystone}/venv/bin/python"
[[ -x "$PY" ]] || PY=python3

KEYSTONE_PASSWORD="$KEYSTONE_PASSWORD" exec "$PY" - "$KEYSTONE_URL" "$user" "$scope" <<'PY'
import json, os, sys, urllib.error, urllib.request

url, user, scope = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
auth = {"identity": {"methods": ["password"], "password": {"user": {
    "name": user, "domain": {"id": "default"}, "password": os.environ["KEYSTONE_PASSWORD"]}}}}
if scope == "--system":
    auth["scope"] = {"system": {"all": True}}
elif scope == "--unscoped":
    auth["scope"] = "unscoped"
elif scope.startswith("-"):
    sys.exit(f"token.sh: unknown option {scope!r} (use a project name, --unscoped or --system)")
else:
    auth["scope"] = {"project": {"name": scope, "domain": {"id": "default"}}}
req = urllib.request.Request(url + "/auth/tokens?nocatalog", method="POST",
                             data=json.dumps({"auth": auth}).encode(),
                             headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(r.headers["X-Subject-Token"])
except urllib.error.HTTPError as e:
    sys.exit(f"token.sh: Keystone refused a token for user {user!r} ({scope}): "
             f"HTTP {e.code}: {e.read().decode(errors='replace')[:300]}")
except (urllib.error.URLError, OSError) as e:
    sys.exit(f"token.sh: cannot reach Keystone at {url}: {e} (is it started? scripts/keystone/start.sh)")
PY
