#!/usr/bin/env bash
# Report whether the Kafka broker from deploy/kafka/start.sh runs.
# Exit status as for LSB init scripts: 0 running, 3 not running.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if pid="$(pid_from_file "$KAFKA_PID")" && pid_cmdline_has "$pid" "$KAFKA_CONFIG"; then
    if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
        echo "kafka: running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT, version $KAFKA_VERSION, data $KAFKA_DATA"
        exit 0
    fi
    echo "kafka: starting or hung (pid $pid), $KAFKA_HOST:$KAFKA_PORT not answering"
    exit 3
fi
if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    echo "kafka: not running from $KAFKA_DIR, but $KAFKA_HOST:$KAFKA_PORT is taken by another process"
else
    echo "kafka: not running"
fi
exit 3
