#!/usr/bin/env bash
# Stop the Kafka broker started by deploy/kafka/start.sh: SIGTERM for a
# controlled shutdown, SIGKILL after DRT_KAFKA_STOP_TIMEOUT seconds (default 30).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if ! pid="$(pid_from_file "$KAFKA_PID")" || ! pid_cmdline_has "$pid" "$KAFKA_CONFIG"; then
    log "Kafka not running from $KAFKA_DIR"
    rm -f "$KAFKA_PID"
    exit 0
fi
log "stopping Kafka (pid $pid)"
started=$SECONDS
stop_pid "$pid" kafka "${DRT_KAFKA_STOP_TIMEOUT:-30}"
rm -f "$KAFKA_PID"
log "Kafka stopped after $((SECONDS - started))s"
