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

# shellcheck source=../lib/pinned-venv.sh
source "$SCRIPT_DIR/../lib/pinned-venv.sh"
pinned_venv NOVA_ACTIONS_CLIENTS_VENV "$VENV" "$PYTHON" "$CONSTRAINTS" .nova-actions-clients \
  "openstack nova" "${WANTED[@]}"
echo "$VENV"
