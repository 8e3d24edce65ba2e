# Shared helpers for the deploy/ scripts. Source it, don't run it:
#   . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#
# Environment (all optional):
#   DRT_CACHE_DIR  downloads that survive a `git clean` (default ~/.cache/drt-dispatch)
#   DRT_VAR_DIR    data, logs and pid files of local services (default <repo>/var)

DRT_REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRT_CACHE_DIR="${DRT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/drt-dispatch}"
DRT_VAR_DIR="${DRT_VAR_DIR:-$DRT_REPO_DIR/var}"
export DRT_REPO_DIR DRT_CACHE_DIR DRT_VAR_DIR

# The name of the calling script, for log prefixes ("kafka/start").
_drt_tag="$(basename "$(dirname "$0")")/$(basename "$0" .sh)"

log() { printf '[%s %s] %s\n' "$(date +%H:%M:%S)" "$_drt_tag" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

have() { command -v "$1" >/dev/null 2>&1; }

# as_root CMD...: run CMD as root, through sudo when we are not root.
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif have sudo; then
        sudo -n "$@"
    else
        die "need root for: $*"
    fi
}

# apt_install PKG...: install Debian packages non-interactively; runs
# `apt-get update` once per process, and only when something is to be installed.
_drt_apt_updated=
apt_install() {
    have apt-get || die "apt-get not found; install by hand: $*"
    if [[ -z $_drt_apt_updated ]]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        _drt_apt_updated=1
    fi
    log "apt-get install $*"
    # A policy-rc.d that exits 101 keeps maintainer scripts from starting
    # services (Debian's postgresql would grab port 5432); we start our own.
    local policy=/usr/sbin/policy-rc.d own_policy= rc=0
    if [[ ! -e $policy ]]; then
        as_root sh -c "printf '#!/bin/sh\\nexit 101\\n' >$policy && chmod +x $policy"
        own_policy=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$@" >&2 || rc=$?
    [[ -z $own_policy ]] || as_root rm -f "$policy"
    return "$rc"
}

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
    timeout 2 bash -c ': > "/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# wait_for_port HOST PORT TIMEOUT_S [PID]: wait until HOST:PORT accepts
# connections. Gives up early when PID (the server we started) has died.
wait_for_port() {
    local host=$1 port=$2 timeout_s=$3 pid=${4:-}
    local deadline=$((SECONDS + timeout_s))
    until port_open "$host" "$port"; do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            log "process $pid exited before $host:$port opened"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            log "timed out after ${timeout_s}s waiting for $host:$port"
            return 1
        fi
        sleep 0.5
    done
}

# pid_from_file FILE: print the pid stored in FILE when that process is alive.
pid_from_file() {
    local pid
    [[ -r $1 ]] || return 1
    pid="$(tr -dc 0-9 <"$1")"
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

# pid_cmdline_has PID TEXT: the command line of PID contains TEXT, so a
# recycled pid in a stale pid file is not mistaken for our server.
pid_cmdline_has() {
    [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"
}

# stop_pid PID NAME GRACE_S: SIGTERM, wait up to GRACE_S, then SIGKILL.
stop_pid() {
    local pid=$1 name=$2 grace_s=$3
    local deadline=$((SECONDS + grace_s))
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "$name (pid $pid) still running after ${grace_s}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.5
    done
}

# tail_log FILE: show the end of a log file after a failure.
tail_log() {
    [[ -r $1 ]] || return 0
    log "last lines of $1:"
    tail -n "${2:-40}" "$1" >&2
}
