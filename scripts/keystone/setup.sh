#!/usr/bin/env bash
# Prepare a real OpenStack Keystone (v3, fernet tokens, sqlite) for the
# keystone-mode tests. Idempotent: run it as often as you like; a second run
# reuses the virtualenv and the database and resets the test users to the
# state described below. See README.md next to this file.
#
# Environment overrides (all optional):
#   KEYSTONE_HOME              where everything lives   [/tmp/nova-actions-keystone]
#   KEYSTONE_PORT              port gunicorn listens on [35357] (127.0.0.1 only)
#   KEYSTONE_TOKEN_EXPIRATION  token lifetime, seconds  [3600]
#   KEYSTONE_PASSWORD_HASH_ROUNDS  bcrypt rounds for new passwords [4]
#                              (Keystone's default 12 costs ~0.25 s per token issued)
#   KEYSTONE_PYTHON            interpreter for the virtualenv [python3]
#   KEYSTONE_PIP_CONSTRAINTS   "none" to install without the pinned dependency set
#
# Network: only PyPI (through pip) and 127.0.0.1.
set -euo pipefail

KEYSTONE_HOME="${KEYSTONE_HOME:-/tmp/nova-actions-keystone}"
KEYSTONE_PORT="${KEYSTONE_PORT:-35357}"
KEYSTONE_TOKEN_EXPIRATION="${KEYSTONE_TOKEN_EXPIRATION:-3600}"
KEYSTONE_PASSWORD_HASH_ROUNDS="${KEYSTONE_PASSWORD_HASH_ROUNDS:-4}"
KEYSTONE_PYTHON="${KEYSTONE_PYTHON:-python3}"
KEYSTONE_PIP_CONSTRAINTS="${KEYSTONE_PIP_CONSTRAINTS:-pinned}"
export KEYSTONE_HOME KEYSTONE_PORT

KEYSTONE_VERSION=30.0.0
GUNICORN_VERSION=27.0.1

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$KEYSTONE_HOME/venv"
CONF_DIR="$KEYSTONE_HOME/etc"
CONF="$CONF_DIR/keystone.conf"
URL="http://127.0.0.1:${KEYSTONE_PORT}/v3"

die() { echo "keystone/setup.sh: ERROR: $*" >&2; exit 1; }
log() { echo "keystone/setup.sh: $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[[ "$KEYSTONE_PORT" =~ ^[0-9]+$ ]] || die "KEYSTONE_PORT must be a number, got '$KEYSTONE_PORT'"
[[ "$KEYSTONE_TOKEN_EXPIRATION" =~ ^[0-9]+$ ]] || die "KEYSTONE_TOKEN_EXPIRATION must be seconds, got '$KEYSTONE_TOKEN_EXPIRATION'"
[[ "$KEYSTONE_PASSWORD_HASH_ROUNDS" =~ ^[0-9]+$ ]] && (( KEYSTONE_PASSWORD_HASH_ROUNDS >= 4 && KEYSTONE_PASSWORD_HASH_ROUNDS <= 31 )) \
  || die "KEYSTONE_PASSWORD_HASH_ROUNDS must be 4..31, got '$KEYSTONE_PASSWORD_HASH_ROUNDS'"
command -v "$KEYSTONE_PYTHON" >/dev/null || die "'$KEYSTONE_PYTHON' not found (set KEYSTONE_PYTHON to a Python >= 3.10)"

T_ALL=$(now)
mkdir -p "$KEYSTONE_HOME" "$CONF_DIR"

# ---------------------------------------------------------------- virtualenv
# The dependency set that was installed and tested together with keystone 30.0.0
# (pip freeze of 2025-era PyPI). Constraints keep a later release of one of
# them from breaking the tests; KEYSTONE_PIP_CONSTRAINTS=none lifts them.
cat >"$KEYSTONE_HOME/constraints.txt" <<'EOF'
alembic==1.20.1
amqp==5.4.2
aniso8601==10.0.1
attrs==26.1.0
bcrypt==5.0.0
blinker==1.9.0
cachetools==8.0.2
certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.5.3
click==8.5.1
cryptography==50.0.2
debtcollector==3.1.0
decorator==5.3.1
defusedxml==0.7.1
dnspython==2.9.2
dogpile.cache==1.5.0
elementpath==4.8.0
eventlet==0.41.3
fasteners==0.20
Flask==3.1.3
Flask-RESTful==0.3.10
futurist==3.5.0
greenlet==3.5.6
gunicorn==27.0.1
idna==3.20
iso8601==2.1.0
itsdangerous==2.2.0
Jinja2==3.1.6
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
keystone==30.0.0
keystoneauth1==5.18.1
keystonemiddleware==13.0.1
kombu==5.7.0
Mako==1.4.3
MarkupSafe==3.0.4
msgpack==1.2.4
netaddr==1.3.0
oauthlib==4.0.1
os-service-types==1.9.0
oslo.cache==4.3.0
oslo.concurrency==7.6.1
oslo.config==10.7.0
oslo.context==6.5.0
oslo.db==18.1.1
oslo.i18n==6.9.0
oslo.log==8.3.2
oslo.messaging==18.3.1
oslo.metrics==0.17.0
oslo.middleware==8.2.0
oslo.policy==6.0.1
oslo.serialization==5.11.0
oslo.service==4.8.0
oslo.upgradecheck==2.8.0
oslo.utils==10.2.0
osprofiler==4.4.0
packaging==26.4
Paste==3.10.1
PasteDeploy==3.1.0
pbr==7.1.3
prettytable==3.18.0
prometheus_client==0.26.0
psutil==7.2.2
pycadf==4.1.0
pycparser==3.12
PyJWT==2.15.1
pyOpenSSL==26.4.0
pyparsing==3.3.3
pysaml2==7.5.5
python-dateutil==4.0.0
python-keystoneclient==6.0.0
pytz==2026.6
PyYAML==6.0.4
referencing==0.37.0
repoze-lru==0.8
requests==2.34.2
rfc3986==2.0.0
Routes==2.5.1
rpds-py==2026.9.1
six==1.17.0
SQLAlchemy==2.1.9
statsd==4.0.1
stevedore==5.10.0
testresources==2.1.2
testscenarios==0.7.0
typing_extensions==4.16.0
tzdata==2026.6
urllib3==2.8.0
vine==5.1.0
wcwidth==0.9.4
WebOb==1.8.11
Werkzeug==3.1.9
wrapt==2.5.2
xmlschema==2.5.1
yappi==1.7.6
EOF

installed_ok() {
  [[ -x "$VENV/bin/python" && -x "$VENV/bin/keystone-manage" && -x "$VENV/bin/gunicorn" ]] || return 1
  "$VENV/bin/python" - "$KEYSTONE_VERSION" "$GUNICORN_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if (version("keystone"), version("gunicorn")) == (sys.argv[1], sys.argv[2]) else 1)
PY
}

if installed_ok; then
  log "virtualenv $VENV already has keystone==$KEYSTONE_VERSION gunicorn==$GUNICORN_VERSION"
else
  T=$(now)
  log "creating virtualenv $VENV and installing keystone==$KEYSTONE_VERSION gunicorn==$GUNICORN_VERSION from PyPI ..."
  [[ -x "$VENV/bin/python" ]] || "$KEYSTONE_PYTHON" -m venv "$VENV" || die "could not create virtualenv $VENV"
  pip_args=(install --quiet --disable-pip-version-check "keystone==$KEYSTONE_VERSION" "gunicorn==$GUNICORN_VERSION")
  [[ "$KEYSTONE_PIP_CONSTRAINTS" == none ]] || pip_args+=(-c "$KEYSTONE_HOME/constraints.txt")
  "$VENV/bin/pip" "${pip_args[@]}" >"$KEYSTONE_HOME/pip.log" 2>&1 \
    || { tail -n 40 "$KEYSTONE_HOME/pip.log" >&2; die "pip install failed (full log: $KEYSTONE_HOME/pip.log)"; }
  installed_ok || die "keystone/gunicorn not usable in $VENV after pip install (see $KEYSTONE_HOME/pip.log)"
  log "installed in $(elapsed "$T") s"
fi
"$VENV/bin/gunicorn" --help 2>/dev/null | grep -q -- '--no-control-socket' \
  || die "installed gunicorn lacks --no-control-socket; start.sh relies on it"

# ---------------------------------------------------------------- config
mkdir -p "$KEYSTONE_HOME/fernet-keys" "$KEYSTONE_HOME/credential-keys"
chmod 700 "$KEYSTONE_HOME/fernet-keys" "$KEYSTONE_HOME/credential-keys"
cat >"$CONF.tmp" <<EOF
# Written by scripts/keystone/setup.sh -- rewritten on every run.
[DEFAULT]
debug = false
log_file = $KEYSTONE_HOME/keystone.log

[database]
connection = sqlite:///$KEYSTONE_HOME/keystone.db

[token]
provider = fernet
expiration = $KEYSTONE_TOKEN_EXPIRATION

[fernet_tokens]
key_repository = $KEYSTONE_HOME/fernet-keys/

[fernet_receipts]
key_repository = $KEYSTONE_HOME/fernet-keys/

[credential]
key_repository = $KEYSTONE_HOME/credential-keys/

[identity]
password_hash_rounds = $KEYSTONE_PASSWORD_HASH_ROUNDS

[cache]
enabled = false

[oslo_concurrency]
lock_path = $KEYSTONE_HOME/locks
EOF
conf_changed=0
cmp -s "$CONF.tmp" "$CONF" 2>/dev/null || conf_changed=1
mv "$CONF.tmp" "$CONF"

# The WSGI entry point for gunicorn. Keystone parses the process's command
# line (oslo.config) when the app loads; gunicorn's own --bind etc. would make
# every worker crash in a loop, so the wrapper clears sys.argv first.
cat >"$KEYSTONE_HOME/keystone_wsgi_app.py" <<EOF
# Written by scripts/keystone/setup.sh -- rewritten on every run.
import os
import sys

sys.argv = sys.argv[:1]
os.environ.setdefault("OS_KEYSTONE_CONFIG_FILES", "$CONF")

from keystone.server.wsgi import initialize_public_application  # noqa: E402

application = initialize_public_application()
EOF

# ---------------------------------------------------------------- database, keys, bootstrap
T=$(now)
km() {
  "$VENV/bin/keystone-manage" --config-file "$CONF" "$@" >>"$KEYSTONE_HOME/keystone-manage.log" 2>&1 \
    || { tail -n 30 "$KEYSTONE_HOME/keystone-manage.log" >&2; tail -n 30 "$KEYSTONE_HOME/keystone.log" >&2 || true
         die "keystone-manage $1 failed (logs: $KEYSTONE_HOME/keystone-manage.log, $KEYSTONE_HOME/keystone.log)"; }
}
me_user="$(id -un)"; me_group="$(id -gn)"
km db_sync
km fernet_setup --keystone-user "$me_user" --keystone-group "$me_group"
km credential_setup --keystone-user "$me_user" --keystone-group "$me_group"
km bootstrap \
  --bootstrap-password admin \
  --bootstrap-username admin \
  --bootstrap-project-name admin \
  --bootstrap-role-name admin \
  --bootstrap-service-name keystone \
  --bootstrap-region-id RegionOne \
  --bootstrap-admin-url "$URL" \
  --bootstrap-internal-url "$URL" \
  --bootstrap-public-url "$URL"
log "db_sync + fernet_setup + credential_setup + bootstrap in $(elapsed "$T") s"

# ---------------------------------------------------------------- test projects, users, roles
# Needs the API, so start Keystone if it is not running (and stop it again
# afterwards in that case).
started_here=0
if "$VENV/bin/python" - "$URL" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=3)
PY
  pidfile="$KEYSTONE_HOME/gunicorn.pid"
  if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log "Keystone already running at $URL (pid $(cat "$pidfile")); it will keep running"
    (( conf_changed == 0 )) || log "NOTE: keystone.conf changed; run stop.sh and start.sh for the running Keystone to use it"
  else
    die "something already answers at $URL but it is not this KEYSTONE_HOME's gunicorn; stop it or set KEYSTONE_PORT"
  fi
else
  "$SCRIPT_DIR/start.sh"
  started_here=1
fi
cleanup() { if (( started_here )); then "$SCRIPT_DIR/stop.sh" || true; fi; }
trap cleanup EXIT

T=$(now)
cat >"$KEYSTONE_HOME/populate.py" <<'PY'
# Written by scripts/keystone/setup.sh: creates (or resets) the test fixtures
# through Keystone's v3 API and writes ids.env. Plain urllib, no client library.
import json
import os
import sys
import urllib.error
import urllib.request

URL = sys.argv[1].rstrip("/")
OUT = sys.argv[2]
PASSWORD = "secret"


def call(method, path, body=None, token=None, ok=(200, 201, 204)):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, resp.headers, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        if e.code in ok:
            return e.code, e.headers, (json.loads(raw) if raw else None)
        sys.exit(f"populate.py: {method} {path} -> {e.code}: {raw.decode(errors='replace')[:500]}")


# Admin token: the bootstrap admin, project-scoped to "admin".
_, hdrs, _ = call("POST", "/auth/tokens?nocatalog", {"auth": {
    "identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "admin"}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
ADMIN = hdrs["X-Subject-Token"]


def listing(path, key):
    _, _, body = call("GET", path, token=ADMIN)
    return body[key]


def ok_password(name):
    """True when NAME can authenticate with PASSWORD (unscoped)."""
    identity = {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"id": "default"}, "password": PASSWORD}}}
    body = {"auth": {"identity": identity, "scope": "unscoped"}}
    req = urllib.request.Request(URL + "/auth/tokens?nocatalog", method="POST",
                                 headers={"Content-Type": "application/json"},
                                 data=json.dumps(body).encode())
    try:
        urllib.request.urlopen(req, timeout=30).close()
        return True
    except urllib.error.HTTPError as e:
        if e.code == 401:
            return False
        raise


ROLES = {r["name"]: r["id"] for r in listing("/roles", "roles")}
for n in ("reader", "member", "manager", "admin", "service"):
    if n not in ROLES:
        sys.exit(f"populate.py: role {n!r} missing (bootstrap should have made it)")

projects = {p["name"]: p for p in listing("/projects?domain_id=default", "projects")}
P = {}
for name, description in (("proj-a", "nova-actions tests: project A"),
                          ("proj-b", "nova-actions tests: project B"),
                          ("service", "service users"), ("admin", None)):
    p = projects.get(name)
    if p is None:
        if description is None:
            sys.exit(f"populate.py: project {name!r} missing (bootstrap should have made it)")
        _, _, body = call("POST", "/projects", {"project": {
            "name": name, "domain_id": "default", "description": description, "enabled": True}},
            token=ADMIN)
        p = body["project"]
    elif not p.get("enabled", True):
        call("PATCH", f"/projects/{p['id']}", {"project": {"enabled": True}}, token=ADMIN)
    P[name] = p["id"]

# user -> (project-role assignments, system-role assignments)
WANT = {
    "reader-a": ([("proj-a", "reader")], []),
    "member-a": ([("proj-a", "member")], []),
    "admin-x": ([("proj-b", "admin")], ["admin"]),
    "norole-a": ([], []),                        # no roles, no default project
    "demoted-a": ([("proj-a", "member")], []),   # for "user lost its role" tests
    "nova-actions": ([("service", "service")], []),
}
users = {u["name"]: u for u in listing("/users?domain_id=default", "users")}
U = {}
for name in WANT:
    u = users.get(name)
    if u is None:
        _, _, body = call("POST", "/users", {"user": {
            "name": name, "domain_id": "default", "password": PASSWORD,
            "description": "nova-actions test user", "enabled": True}}, token=ADMIN)
        U[name] = body["user"]["id"]
        continue
    U[name] = u["id"]
    # Reset to the known state, touching only what differs: a password change
    # revokes every token the user holds, so it is done only when needed.
    fix = {}
    if not u.get("enabled", True):
        fix["enabled"] = True
    if u.get("default_project_id"):
        fix["default_project_id"] = None
    if fix:
        call("PATCH", f"/users/{u['id']}", {"user": fix}, token=ADMIN)
    if not ok_password(name):
        call("PATCH", f"/users/{u['id']}", {"user": {"password": PASSWORD}}, token=ADMIN)
if "admin" not in users:
    sys.exit("populate.py: user 'admin' missing (bootstrap should have made it)")
U["admin"] = users["admin"]["id"]

# Drop every direct assignment of these users that is not wanted (a previous
# test run may have granted or revoked roles), then grant the missing ones.
have = {}
for a in listing("/role_assignments", "role_assignments"):
    uid = a.get("user", {}).get("id")
    if uid:
        have.setdefault(uid, []).append(a)
for name, (proj_roles, sys_roles) in WANT.items():
    uid = U[name]
    want_p = {(P[p], ROLES[r]) for p, r in proj_roles}
    want_s = {ROLES[r] for r in sys_roles}
    for a in have.get(uid, []):
        rid = a["role"]["id"]
        scope = a.get("scope", {})
        if "project" in scope:
            key = (scope["project"]["id"], rid)
            if key in want_p:
                want_p.discard(key)
            else:
                call("DELETE", f"/projects/{key[0]}/users/{uid}/roles/{rid}", token=ADMIN)
        elif "domain" in scope:
            call("DELETE", f"/domains/{scope['domain']['id']}/users/{uid}/roles/{rid}", token=ADMIN)
        elif "system" in scope:
            if rid in want_s:
                want_s.discard(rid)
            else:
                call("DELETE", f"/system/users/{uid}/roles/{rid}", token=ADMIN)
    for pid, rid in sorted(want_p):
        call("PUT", f"/projects/{pid}/users/{uid}/roles/{rid}", token=ADMIN)
    for rid in sorted(want_s):
        call("PUT", f"/system/users/{uid}/roles/{rid}", token=ADMIN)

env = {
    "KEYSTONE_URL": URL,
    "KEYSTONE_AUTH_URL": URL[: -len("/v3")] if URL.endswith("/v3") else URL,
    "DOMAIN_ID": "default",
    "ADMIN_PROJECT_ID": P["admin"],
    "PROJ_A_ID": P["proj-a"],
    "PROJ_B_ID": P["proj-b"],
    "SERVICE_PROJECT_ID": P["service"],
    "ADMIN_ID": U["admin"],
    "READER_A_ID": U["reader-a"],
    "MEMBER_A_ID": U["member-a"],
    "ADMIN_X_ID": U["admin-x"],
    "NOROLE_A_ID": U["norole-a"],
    "DEMOTED_A_ID": U["demoted-a"],
    "NOVA_ACTIONS_ID": U["nova-actions"],
    "SERVICE_USER_ID": U["nova-actions"],
}
env.update({f"ROLE_{n.upper()}_ID": rid for n, rid in ROLES.items()})
tmp = OUT + ".tmp"
with open(tmp, "w") as f:
    f.write("# Written by scripts/keystone/setup.sh. Users' password: secret (admin: admin).\n")
    for k, v in env.items():
        f.write(f"{k}={v}\n")
os.replace(tmp, OUT)
PY
"$VENV/bin/python" "$KEYSTONE_HOME/populate.py" "$URL" "$KEYSTONE_HOME/ids.env" \
  || die "creating the test projects/users failed (Keystone log: $KEYSTONE_HOME/gunicorn.log)"
log "projects/users/roles in $(elapsed "$T") s"
log "ids written to $KEYSTONE_HOME/ids.env"
log "setup done in $(elapsed "$T_ALL") s"
