#!/usr/bin/env bash
# Start a private PostgreSQL cluster on 127.0.0.1 for development and tests.
#
#   bash deploy/postgres/start.sh   # idempotent: exits 0 when already running
#
# Installs Debian's postgresql package when no server binaries are found,
# initialises the cluster on first use, creates role `drt` (password `drt`)
# owning database `drt`, and waits until it accepts connections:
#   postgresql://drt:drt@127.0.0.1:5433/drt
#
# Environment (all optional):
#   DRT_PG_PORT     TCP port (default 5433)
#   DRT_PG_DIR      cluster directory (default $DRT_VAR_DIR/postgres, see env.sh)
#   DRT_VAR_DIR     see deploy/lib.sh
#
# Tuned for throwaway test data: fsync and synchronous_commit are off, so an
# OS crash (not a killed server) can lose the last transactions.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if ! PG_BIN="$(pg_find_bin)"; then
    apt_install postgresql
    PG_BIN="$(pg_find_bin)" || die "no PostgreSQL server binaries after installing"
fi
if [[ $EUID -eq 0 ]] && ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
    log "creating system user $PG_OS_USER"
    useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash "$PG_OS_USER"
fi
# The user check may have changed now that the postgres user exists.
PG_DIR="$(pg_pick_dir)"
PG_DATA="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"
if ((${#PG_DIR} <= 90)); then PG_SOCKET_DIR="$PG_DIR"; else PG_SOCKET_DIR=/tmp; fi
if [[ -z ${DRT_PG_DIR:-} && $PG_DIR != "$DRT_VAR_DIR/postgres" ]]; then
    log "user $PG_OS_USER cannot reach $DRT_VAR_DIR; the cluster lives in $PG_DIR"
fi

psql_admin() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" \
        -U postgres -d postgres "$@"
}

ensure_app_db() {
    psql_admin <<SQL
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', '$PG_APP_USER', '$PG_APP_PASSWORD')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_APP_USER') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$PG_APP_DB', '$PG_APP_USER')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_APP_DB') \gexec
SQL
}

wait_ready() {
    local deadline=$((SECONDS + ${DRT_PG_START_TIMEOUT:-60}))
    until "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -d "$PG_APP_DB" -U "$PG_APP_USER"; do
        ((SECONDS < deadline)) || die "PostgreSQL not ready on $PG_HOST:$PG_PORT"
        sleep 0.5
    done
}

if [[ -f $PG_DATA/PG_VERSION ]] && pg_run "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1; then
    running_port="$(sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
    [[ $running_port == "$PG_PORT" ]] \
        || die "PostgreSQL from $PG_DATA runs on port $running_port, not $PG_PORT; run deploy/postgres/stop.sh first"
    ensure_app_db
    wait_ready
    log "PostgreSQL already running on $PG_HOST:$PG_PORT, data in $PG_DATA"
    exit 0
fi
if port_open "$PG_HOST" "$PG_PORT"; then
    die "port $PG_PORT on $PG_HOST is taken by a server not started from $PG_DATA; stop it or set DRT_PG_PORT"
fi

started=$SECONDS
if [[ $EUID -eq 0 ]]; then
    mkdir -p "$DRT_VAR_DIR"
    install -d -o "$PG_OS_USER" -g "$(id -gn "$PG_OS_USER")" -m 700 "$PG_DIR"
else
    install -d -m 700 "$PG_DIR"
fi

if [[ ! -f $PG_DATA/PG_VERSION ]]; then
    log "initialising a cluster in $PG_DATA"
    rm -rf "$PG_DATA"
    # Trust over the Unix socket is safe: the socket sits in a 0700 directory
    # of the cluster owner. TCP clients need a password.
    pg_run "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 \
        || { tail_log "$PG_DIR/initdb.log"; die "initdb failed"; }
    pg_run tee -a "$PG_DATA/postgresql.conf" >/dev/null <<CONF

# deploy/postgres/start.sh: a throwaway cluster for development and tests
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
log_min_messages = warning
log_min_duration_statement = 1000
CONF
fi

log "starting PostgreSQL on $PG_HOST:$PG_PORT (log $PG_LOG)"
# Port, address and socket dir are passed per start, so DRT_PG_PORT can change.
if ! pg_run "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "${DRT_PG_START_TIMEOUT:-60}" \
    -o "-p $PG_PORT -c listen_addresses=$PG_HOST -c unix_socket_directories=$PG_SOCKET_DIR" >/dev/null; then
    tail_log "$PG_LOG"
    die "PostgreSQL did not start"
fi
ensure_app_db
wait_ready
log "PostgreSQL running on $PG_HOST:$PG_PORT after $((SECONDS - started))s: $PG_DSN"
