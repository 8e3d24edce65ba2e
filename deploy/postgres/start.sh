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
#   DRT_PG_TLS=1 bash deploy/postgres/start.sh   # a second cluster, TLS only
#
# Environment (all optional):
#   DRT_PG_PORT     TCP port (default 5433; TLS: 5434)
#   DRT_PG_DIR      cluster directory (default $DRT_VAR_DIR/postgres, see env.sh)
#   DRT_PG_TLS      1: TCP clients must use TLS and a scram-sha-256 password; the
#                   server certificate (127.0.0.1, localhost) comes from the
#                   throwaway CA in $DRT_TLS_DIR, the password of `drt` from
#                   $DRT_SECRETS_DIR/postgres-drt.password (generated unless
#                   present, set on every start); the dispatcher's settings are
#                   written to $DRT_VAR_DIR/postgres-tls.env
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
if [[ -z ${DRT_PG_DIR:-} && $PG_DIR != "$DRT_VAR_DIR/$PG_DIR_NAME" ]]; then
    log "user $PG_OS_USER cannot reach $DRT_VAR_DIR; the cluster lives in $PG_DIR"
fi

psql_admin() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" \
        -U postgres -d postgres "$@"
}

if [[ -n $PG_TLS ]]; then
    PG_PASSWORD_FILE="$(secret_file postgres-drt.password)"
    PG_APP_PASSWORD="$(read_secret "$PG_PASSWORD_FILE")"
fi
# The password goes to psql on stdin (never on a command line), quoted for SQL.
pw_sql="'${PG_APP_PASSWORD//\'/\'\'}'"

ensure_app_db() {
    psql_admin <<SQL
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', '$PG_APP_USER', $pw_sql)
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_APP_USER') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$PG_APP_DB', '$PG_APP_USER')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_APP_DB') \gexec
SQL
    # TLS mode: the password file is the truth, also after it changed.
    [[ -z $PG_TLS ]] || psql_admin <<SQL
SELECT format('ALTER ROLE %I PASSWORD %L', '$PG_APP_USER', $pw_sql) \gexec
SQL
}

# TLS mode: the server certificate and key, owned by the cluster's user.
install_tls_files() {
    local owner=()
    tls_issue postgres
    if [[ $EUID -eq 0 ]]; then owner=(-o "$PG_OS_USER" -g "$(id -gn "$PG_OS_USER")"); fi
    install "${owner[@]}" -m 644 "$DRT_TLS_DIR/postgres.pem" "$PG_DATA/server.crt"
    install "${owner[@]}" -m 600 "$DRT_TLS_DIR/postgres.key" "$PG_DATA/server.key"
    cat >"$PG_CLIENT_ENV" <<ENV
# drt serve against the TLS cluster: set -a; . $PG_CLIENT_ENV; set +a
DRT_DATABASE__DSN=$PG_DSN
DRT_DATABASE__PASSWORD_FILE=$PG_PASSWORD_FILE
DRT_DATABASE__SSLMODE=verify-full
DRT_DATABASE__SSLROOTCERT=$DRT_TLS_DIR/ca.pem
ENV
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
    if [[ -n $PG_TLS ]]; then
        pg_run tee -a "$PG_DATA/postgresql.conf" >/dev/null <<CONF
# DRT_PG_TLS=1: TCP only over TLS (pg_hba.conf), scram-sha-256 passwords
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = scram-sha-256
CONF
        pg_run tee "$PG_DATA/pg_hba.conf" >/dev/null <<HBA
# Generated by deploy/postgres/start.sh (DRT_PG_TLS=1).
# TYPE     DATABASE  USER  ADDRESS       METHOD
local      all       all                 trust
hostssl    all       all   127.0.0.1/32  scram-sha-256
hostssl    all       all   ::1/128       scram-sha-256
host       all       all   all           reject
HBA
    fi
fi
[[ -z $PG_TLS ]] || install_tls_files

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
[[ -z $PG_TLS ]] || log "TLS only; client settings for drt: $PG_CLIENT_ENV"
