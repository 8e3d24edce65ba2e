#!/usr/bin/env bash
# The whole test suite against a real Kafka broker and PostgreSQL server.
#
#   bash deploy/test.sh                                   # everything under tests/
#   bash deploy/test.sh tests/integration -k transaction  # arguments go to pytest
#
# Creates .venv (deploy/setup.sh), installs Prometheus if missing, starts Kafka and PostgreSQL on 127.0.0.1 unless
# they already run, runs pytest with the connection variables set, and stops
# the services it started (set DRT_KEEP_SERVICES=1 to leave them running).
# Exits with pytest's status; "no tests collected" (5) counts as a failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/kafka/env.sh"
. "$here/postgres/env.sh"

bash "$here/setup.sh"
# promtool and prometheus: tests/unit/deploy and the observability test use them.
bash "$here/prometheus/install.sh"

started=()
stop_started() {
    local i
    if [[ -n ${DRT_KEEP_SERVICES:-} ]]; then
        ((${#started[@]} == 0)) || log "leaving ${started[*]} running (DRT_KEEP_SERVICES)"
        return
    fi
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do
        bash "$here/${started[i]}/stop.sh" || log "stopping ${started[i]} failed"
    done
}
trap stop_started EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for service in kafka postgres; do
    if status="$(bash "$here/$service/status.sh")"; then
        log "$status; leaving it running afterwards"
    else
        log "starting $service"
        # Record before starting, so a start that fails halfway is cleaned up too.
        started+=("$service")
        bash "$here/$service/start.sh"
    fi
done

export DRT_KAFKA__BOOTSTRAP_SERVERS="$KAFKA_HOST:$KAFKA_PORT"
export DRT_DATABASE__DSN="$PG_DSN"
log "DRT_KAFKA__BOOTSTRAP_SERVERS=$DRT_KAFKA__BOOTSTRAP_SERVERS"
log "DRT_DATABASE__DSN=$DRT_DATABASE__DSN"
log "running: .venv/bin/python -m pytest $*"

cd "$DRT_REPO_DIR"
rc=0
"$DRT_REPO_DIR/.venv/bin/python" -m pytest "$@" || rc=$?
case $rc in
    0) log "tests passed" ;;
    5) log "FAILED: pytest collected no tests" ;;
    *) log "FAILED: pytest exited with status $rc" ;;
esac
exit "$rc"
