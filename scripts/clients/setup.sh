#!/usr/bin/env bash
# Installs the real OpenStack clients the "clients" integration tests run
# (tests/integration/clients.rs): python-openstackclient, openstacksdk, python-novaclient and
# keystoneauth1, at the versions pinned in constraints.txt next to this file, into a virtualenv
# outside the source tree. Prints the virtualenv's path on stdout (logs go to stderr), so
#
#   export NOVA_ACTIONS_CLIENTS_VENV=$(bash scripts/clients/setup.sh)
#
# is all a test run needs. Idempotent: when the virtualenv already holds exactly this set it only
# checks that and returns (well under a second); a changed constraints.txt reinstalls.
#
# Environment (all optional):
#   NOVA_ACTIONS_CLIENTS_VENV    the virtualenv [$HOME/.cache/nova-actions/clients-venv]
#   NOVA_ACTIONS_CLIENTS_PYTHON  interpreter that creates it (Python >= 3.10) [python3]
#
# Network: only PyPI (through pip), and only when something must be installed.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/../.." && pwd)"
VENV="${NOVA_ACTIONS_CLIENTS_VENV:-$HOME/.cache/nova-actions/clients-venv}"
PYTHON="${NOVA_ACTIONS_CLIENTS_PYTHON:-python3}"
CONSTRAINTS="$SCRIPT_DIR/constraints.txt"
# What the tests run; every other package comes in as their dependency, pinned by constraints.txt.
WANTED=(python-openstackclient==10.5.0 openstacksdk==4.22.0 python-novaclient==18.13.1 keystoneauth1==5.18.1 pytest==8.3.5)

die() { echo "clients/setup.sh: ERROR: $*" >&2; exit 1; }
log() { echo "clients/setup.sh: $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

mkdir -p "$(dirname "$VENV")"
VENV="$(cd "$(dirname "$VENV")" && pwd)/$(basename "$VENV")"
case "$VENV/" in
  "$REPO_DIR"/*) die "NOVA_ACTIONS_CLIENTS_VENV=$VENV is inside the source tree $REPO_DIR; put it elsewhere" ;;
esac

# The stamp names the exact set installed: the wanted list and the constraints file's content.
want_stamp="$( { printf '%s\n' "${WANTED[@]}"; cat "$CONSTRAINTS"; } | sha256sum | cut -d' ' -f1)"
STAMP="$VENV/.nova-actions-clients"

installed_ok() {
  [[ -x "$VENV/bin/python" && -x "$VENV/bin/openstack" && -x "$VENV/bin/nova" && -f "$STAMP" ]] || return 1
  [[ "$(cat "$STAMP")" == "$want_stamp" ]] || return 1
  "$VENV/bin/python" - "${WANTED[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, _, want = spec.partition("==")
    if version(name) != want:
        sys.exit(1)
PY
}

if installed_ok; then
  log "$VENV already has ${WANTED[*]}"
else
  command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found (set NOVA_ACTIONS_CLIENTS_PYTHON to a Python >= 3.10)"
  "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || die "$PYTHON is $("$PYTHON" -V 2>&1); the clients need Python >= 3.10 (set NOVA_ACTIONS_CLIENTS_PYTHON)"
  T=$(now)
  log "installing ${WANTED[*]} into $VENV from PyPI ..."
  rm -f "$STAMP"
  [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV" || die "could not create virtualenv $VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -c "$CONSTRAINTS" "${WANTED[@]}" \
    >"$VENV/pip.log" 2>&1 \
    || { tail -n 40 "$VENV/pip.log" >&2; die "pip install failed (full log: $VENV/pip.log)"; }
  echo "$want_stamp" >"$STAMP"
  installed_ok || die "the clients are not usable in $VENV after pip install (see $VENV/pip.log)"
  log "installed in $(elapsed "$T") s"
fi
echo "$VENV"
