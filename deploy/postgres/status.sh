#!/usr/bin/env bash
# Report whether the cluster from deploy/postgres/start.sh runs.
# Exit status as for LSB init scripts: 0 running, 3 not running.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if PG_BIN="$(pg_find_bin)" && [[ -f $PG_DATA/PG_VERSION ]] \
    && pg_run "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1; then
    pid="$(sed -n 1p "$PG_DATA/postmaster.pid")"
    port="$(sed -n 4p "$PG_DATA/postmaster.pid")"
    echo "postgres: running (pid $pid) on $PG_HOST:$port, data $PG_DATA, dsn $PG_DSN"
    exit 0
fi
if port_open "$PG_HOST" "$PG_PORT"; then
    echo "postgres: not running from $PG_DATA, but $PG_HOST:$PG_PORT is taken by another process"
else
    echo "postgres: not running"
fi
exit 3
