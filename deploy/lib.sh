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

# --- Throwaway TLS and secrets for the secured local services --------------------
# DRT_TLS_DIR (default $DRT_VAR_DIR/tls) holds a private CA (ca.pem, ca.key) and the
# certificates it issues; DRT_SECRETS_DIR (default $DRT_VAR_DIR/secrets) the password
# files (0700). Both are created on first use; put your own files there first to
# use them instead of generated ones.
DRT_TLS_DIR="${DRT_TLS_DIR:-$DRT_VAR_DIR/tls}"
DRT_SECRETS_DIR="${DRT_SECRETS_DIR:-$DRT_VAR_DIR/secrets}"

# tls_ensure_ca: create the CA in $DRT_TLS_DIR unless it exists (10 years).
tls_ensure_ca() {
    have openssl || apt_install openssl
    install -d -m 755 "$DRT_TLS_DIR"  # certificates 0644, keys 0600
    [[ -s $DRT_TLS_DIR/ca.pem && -s $DRT_TLS_DIR/ca.key ]] && return 0
    log "creating a throwaway CA in $DRT_TLS_DIR"
    (
        umask 077
        openssl req -x509 -newkey rsa:2048 -noenc -days 3650 -sha256 \
            -subj "/O=drt-dispatch/CN=drt-dispatch throwaway CA" \
            -keyout "$DRT_TLS_DIR/ca.key" -out "$DRT_TLS_DIR/ca.pem" 2>/dev/null
    ) || die "openssl could not create the CA"
    chmod 644 "$DRT_TLS_DIR/ca.pem"
}

# tls_issue NAME: $DRT_TLS_DIR/NAME.pem (certificate) and NAME.key (unencrypted
# PKCS#8 key, mode 0600) for 127.0.0.1, ::1 and localhost, signed by the CA; kept
# while the CA still verifies it.
tls_issue() {
    local name=$1 dir=$DRT_TLS_DIR
    tls_ensure_ca
    if [[ -s $dir/$name.pem && -s $dir/$name.key ]] \
        && openssl verify -CAfile "$dir/ca.pem" "$dir/$name.pem" >/dev/null 2>&1; then
        return 0
    fi
    log "issuing a TLS certificate for $name (127.0.0.1, localhost)"
    (
        umask 077
        openssl req -newkey rsa:2048 -noenc -subj "/O=drt-dispatch/CN=$name" \
            -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null \
            && openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
                -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
                -out "$dir/$name.pem" -extfile /dev/stdin 2>/dev/null <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, IP:::1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EXT
    ) || die "openssl could not issue the certificate for $name"
    rm -f "$dir/$name.csr"
    chmod 644 "$dir/$name.pem"
}

# secret_file NAME: print the path of $DRT_SECRETS_DIR/NAME, a password file (mode
# 0600) filled with 32 random hex characters unless it exists already.
secret_file() {
    local file=$DRT_SECRETS_DIR/$1
    install -d -m 700 "$DRT_SECRETS_DIR"
    if [[ ! -s $file ]]; then
        (umask 077 && openssl rand -hex 16 >"$file") || die "cannot write $file"
    fi
    printf '%s\n' "$file"
}

# read_secret FILE: the first line of FILE, without surrounding whitespace.
read_secret() {
    local value
    IFS= read -r value <"$1" || [[ -n $value ]] || die "empty secret file $1"
    value="${value#"${value%%[![:space:]]*}"}"
    printf '%s' "${value%"${value##*[![:space:]]}"}"
}
