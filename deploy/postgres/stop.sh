#!/usr/bin/env bash
# Stop the cluster started by deploy/postgres/start.sh ("fast" shutdown:
# disconnect clients, then stop; "immediate" if that takes too long).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

PG_BIN="$(pg_find_bin)" || { log "no PostgreSQL binaries, nothing to stop"; exit 0; }
if [[ ! -f $PG_DATA/PG_VERSION ]] || ! pg_run "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1; then
    log "PostgreSQL not running from $PG_DATA"
    exit 0
fi
log "stopping PostgreSQL ($PG_DATA)"
started=$SECONDS
if ! pg_run "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t "${DRT_PG_STOP_TIMEOUT:-30}" >/dev/null; then
    log "fast shutdown timed out, using immediate"
    pg_run "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -w -t 30 >/dev/null
fi
log "PostgreSQL stopped after $((SECONDS - started))s"
