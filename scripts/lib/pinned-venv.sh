# Sourced by the scripts that install Python tools for the tests (clients/setup.sh,
# openapi/check.sh): a virtualenv outside the source tree holding exactly a pinned set, rebuilt
# only when that set or its constraints file changes. The caller defines die() and log().
#
#   pinned_venv SETTING VENV PYTHON CONSTRAINTS STAMP "BIN ..." WANTED...
#
# SETTING is the environment variable that chose VENV (named in errors; its _PYTHON twin chooses
# the interpreter). BIN are executables the set must provide; WANTED are name==version pins.
# Sets VENV to the virtualenv's absolute path.
pinned_venv() {
  local setting=$1 venv=$2 python=$3 constraints=$4 stamp_name=$5 bins=$6
  shift 6
  local wanted=("$@") repo want_stamp stamp started
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  mkdir -p "$(dirname "$venv")"
  venv="$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")"
  case "$venv/" in
    "$repo"/*) die "$setting=$venv is inside the source tree $repo; put it elsewhere" ;;
  esac
  # The stamp names the exact set installed: the wanted list and the constraints file's content.
  want_stamp="$( { printf '%s\n' "${wanted[@]}"; cat "$constraints"; } | sha256sum | cut -d' ' -f1)"
  stamp="$venv/$stamp_name"
  if _pinned_venv_ok; then
    log "$venv already has ${wanted[*]}"
  else
    command -v "$python" >/dev/null || die "'$python' not found (set ${setting%_VENV}_PYTHON to a Python >= 3.10)"
    "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
      || die "$python is $("$python" -V 2>&1); these tools need Python >= 3.10 (set ${setting%_VENV}_PYTHON)"
    started=$(date +%s)
    log "installing ${wanted[*]} into $venv from PyPI ..."
    rm -f "$stamp"
    [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv" || die "could not create virtualenv $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -c "$constraints" "${wanted[@]}" \
      >"$venv/pip.log" 2>&1 \
      || { tail -n 40 "$venv/pip.log" >&2; die "pip install failed (full log: $venv/pip.log)"; }
    echo "$want_stamp" >"$stamp"
    _pinned_venv_ok || die "the tools are not usable in $venv after pip install (see $venv/pip.log)"
    log "installed in $(( $(date +%s) - started )) s"
  fi
  VENV=$venv
}

# Whether the virtualenv has every BIN, the stamp of this very set, and each pin (reads
# pinned_venv's locals).
_pinned_venv_ok() {
  local bin
  [[ -x "$venv/bin/python" && -f "$stamp" ]] || return 1
  for bin in $bins; do [[ -x "$venv/bin/$bin" ]] || return 1; done
  [[ "$(cat "$stamp")" == "$want_stamp" ]] || return 1
  "$venv/bin/python" - "${wanted[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, _, want = spec.partition("==")
    if version(name) != want:
        sys.exit(1)
PY
}
