#!/usr/bin/env bash
# Start the Keystone prepared by setup.sh: gunicorn in the background on
# 127.0.0.1:$KEYSTONE_PORT, pid in $KEYSTONE_HOME/gunicorn.pid, log in
# $KEYSTONE_HOME/gunicorn.log. Returns once GET /v3 answers (or fails loudly).
#
#   KEYSTONE_HOME          [/tmp/nova-actions-keystone]
#   KEYSTONE_PORT          [35357]
#   KEYSTONE_WORKERS       gunicorn sync workers [2]
#   KEYSTONE_START_TIMEOUT seconds to wait for GET /v3 [60]
set -euo pipefail

KEYSTONE_HOME="${KEYSTONE_HOME:-/tmp/nova-actions-keystone}"
KEYSTONE_PORT="${KEYSTONE_PORT:-35357}"
KEYSTONE_WORKERS="${KEYSTONE_WORKERS:-2}"
KEYSTONE_START_TIMEOUT="${KEYSTONE_START_TIMEOUT:-60}"
VENV="$KEYSTONE_HOME/venv"
PIDFILE="$KEYSTONE_HOME/gunicorn.pid"
LOG="$KEYSTONE_HOME/gunicorn.log"
URL="http://127.0.0.1:${KEYSTONE_PORT}/v3"

die() { echo "keystone/start.sh: ERROR: $*" >&2; exit 1; }
log() { echo "keystone/start.sh: $*" >&2; }
show_logs() {
  echo "----- last lines of $LOG -----" >&2; tail -n 50 "$LOG" >&2 2>/dev/null || true
  echo "----- $KEYSTONE_HOME/keystone.log since this start (last lines) -----" >&2
  tail -c +"$(( ${KLOG_OFFSET:-0} + 1 ))" "$KEYSTONE_HOME/keystone.log" 2>/dev/null | tail -n 15 >&2 || true
}

[[ -x "$VENV/bin/gunicorn" && -f "$KEYSTONE_HOME/keystone_wsgi_app.py" && -f "$KEYSTONE_HOME/etc/keystone.conf" ]] \
  || die "$KEYSTONE_HOME is not set up; run scripts/keystone/setup.sh first"
[[ "$KEYSTONE_PORT" =~ ^[0-9]+$ ]] || die "KEYSTONE_PORT must be a number, got '$KEYSTONE_PORT'"

# Answers GET /v3 with 200? (exit 0), connection refused etc. (exit 1)
answers() {
  "$VENV/bin/python" - "$URL" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}
port_open() {
  "$VENV/bin/python" - "$KEYSTONE_PORT" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}

if [[ -f "$PIDFILE" ]]; then
  pid="$(cat "$PIDFILE")"
  if kill -0 "$pid" 2>/dev/null; then
    if answers; then log "already running (pid $pid) at $URL"; exit 0; fi
    die "pid $pid from $PIDFILE is alive but $URL does not answer; run stop.sh first"
  fi
  rm -f "$PIDFILE"
fi
port_open && die "port 127.0.0.1:$KEYSTONE_PORT is already in use by another process (set KEYSTONE_PORT or stop it)"

start=$(date +%s.%N)
: >"$LOG"
KLOG_OFFSET="$(stat -c %s "$KEYSTONE_HOME/keystone.log" 2>/dev/null || echo 0)"
cd "$KEYSTONE_HOME"
# --no-control-socket: gunicorn 27 otherwise opens a control socket shared by
# every gunicorn on the machine. Workers load the app themselves (no preload:
# sqlite handles must not cross fork()).
OS_KEYSTONE_CONFIG_FILES="$KEYSTONE_HOME/etc/keystone.conf" \
nohup "$VENV/bin/gunicorn" \
  --no-control-socket \
  --bind "127.0.0.1:$KEYSTONE_PORT" \
  --workers "$KEYSTONE_WORKERS" \
  --worker-class sync \
  --timeout 60 \
  --graceful-timeout 10 \
  --chdir "$KEYSTONE_HOME" \
  --pythonpath "$KEYSTONE_HOME" \
  --error-logfile - \
  --access-logfile - \
  --access-logformat '%(h)s "%(r)s" %(s)s %(B)s %(M)sms' \
  --capture-output \
  keystone_wsgi_app:application \
  </dev/null >>"$LOG" 2>&1 &
pid=$!
echo "$pid" >"$PIDFILE"

deadline=$(( $(date +%s) + KEYSTONE_START_TIMEOUT ))
until answers; do
  if ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$PIDFILE"; show_logs; die "gunicorn (pid $pid) exited during start-up"
  fi
  if (( $(date +%s) >= deadline )); then
    show_logs
    kill -TERM "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
    die "Keystone did not answer GET $URL within ${KEYSTONE_START_TIMEOUT}s (gunicorn pid $pid stopped)"
  fi
  sleep 0.2
done
if grep -q -E 'Worker \(pid:[0-9]+\) (exited|was sent)|Traceback' "$LOG"; then
  show_logs; log "WARNING: workers crashed during start-up (see above), but $URL answers"
fi
log "Keystone answers at $URL (gunicorn pid $pid, $KEYSTONE_WORKERS workers) after $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
