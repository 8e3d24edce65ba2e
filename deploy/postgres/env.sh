# Settings shared by the deploy/postgres scripts; sourced, not run.
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

PG_HOST=127.0.0.1
PG_APP_USER=drt
PG_APP_DB=drt
# DRT_PG_TLS=1: a separate cluster that accepts TCP clients only over TLS
# (certificate from the throwaway CA in lib.sh) with scram-sha-256 passwords;
# the password of `drt` lives in $DRT_SECRETS_DIR/postgres-drt.password
# (generated unless present). Default port 5434, cluster in
# $DRT_VAR_DIR/postgres-tls. The status and stop scripts need the same variable.
if [[ ${DRT_PG_TLS:-0} == 1 ]]; then
    PG_TLS=1
    PG_PORT="${DRT_PG_PORT:-5434}"
    PG_DIR_NAME=postgres-tls
    PG_DSN="postgresql://$PG_APP_USER@$PG_HOST:$PG_PORT/$PG_APP_DB"  # password from the file
else
    PG_TLS=
    # 5433, not 5432: installing Debian's postgresql package creates and may start
    # a "15/main" cluster on 5432, which would then clash with ours.
    PG_PORT="${DRT_PG_PORT:-5433}"
    PG_DIR_NAME=postgres
    PG_APP_PASSWORD=drt
    PG_DSN="postgresql://$PG_APP_USER:$PG_APP_PASSWORD@$PG_HOST:$PG_PORT/$PG_APP_DB"
fi

# PostgreSQL refuses to run as root, so as root the server runs as the
# `postgres` system user (created by the Debian package).
if [[ $EUID -eq 0 ]]; then
    PG_OS_USER=postgres
else
    PG_OS_USER="$(id -un)"
fi

# pg_run CMD...: run CMD as the user that owns the cluster.
pg_run() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u "$PG_OS_USER" -- "$@"
    else
        "$@"
    fi
}

# The newest installed server's bin dir, e.g. /usr/lib/postgresql/15/bin.
pg_find_bin() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
    [[ -n $d && -x $d/pg_ctl ]] || return 1
    printf '%s\n' "$d"
}

# The cluster lives in $DRT_VAR_DIR/postgres unless the postgres user cannot
# reach that directory (say, a repo under a root-only home); then it moves to
# /tmp under a name derived from the var dir. DRT_PG_DIR overrides both.
pg_pick_dir() {
    local want="$DRT_VAR_DIR/$PG_DIR_NAME" probe
    if [[ -n ${DRT_PG_DIR:-} ]]; then
        printf '%s\n' "$DRT_PG_DIR"
        return
    fi
    if [[ $EUID -eq 0 ]] && id -u "$PG_OS_USER" >/dev/null 2>&1; then
        probe="$DRT_VAR_DIR"
        while [[ ! -e $probe ]]; do probe="$(dirname "$probe")"; done
        if ! runuser -u "$PG_OS_USER" -- test -x "$probe"; then
            want="/tmp/drt-dispatch-$PG_DIR_NAME-$(printf '%s' "$DRT_VAR_DIR" | cksum | cut -d' ' -f1)"
        fi
    fi
    printf '%s\n' "$want"
}
PG_DIR="$(pg_pick_dir)"
PG_DATA="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"
# A Unix socket path must fit in 107 bytes; fall back to /tmp for deep dirs.
if ((${#PG_DIR} <= 90)); then PG_SOCKET_DIR="$PG_DIR"; else PG_SOCKET_DIR=/tmp; fi
# The dispatcher's settings for the TLS cluster (`set -a; . FILE; set +a`).
PG_CLIENT_ENV="$DRT_VAR_DIR/postgres-tls.env"
