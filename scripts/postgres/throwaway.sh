#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for tests and benchmarks: initdb into a fresh directory (as the
# `postgres` user when run as root, since PostgreSQL refuses to run as root), listening on
# 127.0.0.1 only, trust authentication for local connections, stopped and removed by `stop`.
#
#   scripts/postgres/throwaway.sh start [PORT]   prints the URL to use, e.g.
#                                               postgresql://postgres@127.0.0.1:55432/postgres
#   scripts/postgres/throwaway.sh stop [PORT]
#   scripts/postgres/throwaway.sh pause|resume [PORT]   stops / starts the server, keeping its data
#                                                      (tests of a database that goes away)
#
# Installs postgresql-15 from Debian when no server binaries are found.
set -euo pipefail
cmd=${1:-start}
port=${2:-55432}
dir=/tmp/nova-actions-pg-$port

bindir=""
for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$d/postgres" ]; then bindir=$d; break; fi
done
if [ -z "$bindir" ] && [ "$cmd" = start ]; then
    echo "throwaway.sh: installing postgresql-15" >&2
    apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-15 >&2
    bindir=/usr/lib/postgresql/15/bin
fi

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "$cmd" in
start)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=400 -c shared_buffers=128MB" \
        start >/dev/null
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    ;;
pause)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
resume)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=400 -c shared_buffers=128MB" \
        start >/dev/null
    ;;
stop)
    if [ -n "$bindir" ] && [ -d "$dir/data" ]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop|pause|resume [PORT]" >&2
    exit 2
    ;;
esac
