#!/usr/bin/env bash
# Stop the Keystone started by start.sh and wait until its port is closed.
#   KEYSTONE_HOME [/tmp/nova-actions-keystone]   KEYSTONE_PORT [35357]
set -euo pipefail

KEYSTONE_HOME="${KEYSTONE_HOME:-/tmp/nova-actions-keystone}"
KEYSTONE_PORT="${KEYSTONE_PORT:-35357}"
PIDFILE="$KEYSTONE_HOME/gunicorn.pid"

die() { echo "keystone/stop.sh: ERROR: $*" >&2; exit 1; }
log() { echo "keystone/stop.sh: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$KEYSTONE_PORT") 2>/dev/null; }

if [[ ! -f "$PIDFILE" ]]; then
  port_open && die "no $PIDFILE, yet 127.0.0.1:$KEYSTONE_PORT is open: not ours, not stopping it"
  log "not running"; exit 0
fi
pid="$(cat "$PIDFILE")"
[[ "$pid" =~ ^[0-9]+$ ]] || { rm -f "$PIDFILE"; die "garbage in $PIDFILE removed"; }
if ! kill -0 "$pid" 2>/dev/null; then
  rm -f "$PIDFILE"
  port_open && die "gunicorn pid $pid is gone, yet 127.0.0.1:$KEYSTONE_PORT is open: not ours, not stopping it"
  log "not running (stale pid file removed)"; exit 0
fi
# Make sure the pid is our gunicorn master, not a recycled pid.
if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "gunicorn.*keystone_wsgi_app"; then
  rm -f "$PIDFILE"; die "pid $pid is not a Keystone gunicorn (pid file was stale); removed $PIDFILE"
fi

kill -TERM "$pid"          # gunicorn: graceful stop of master and workers
for _ in $(seq 1 150); do  # up to 15 s
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  log "gunicorn pid $pid still alive after 15 s, sending SIGKILL to it and its workers"
  pkill -KILL -P "$pid" 2>/dev/null || true
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.5
fi
for _ in $(seq 1 100); do   # up to 10 s for the port to close
  port_open || { rm -f "$PIDFILE"; log "stopped (pid $pid), port $KEYSTONE_PORT closed"; exit 0; }
  sleep 0.1
done
die "gunicorn pid $pid stopped but 127.0.0.1:$KEYSTONE_PORT is still open"
