# Settings shared by the deploy/kafka scripts; sourced, not run.
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

KAFKA_VERSION="${DRT_KAFKA_VERSION:-4.1.1}"
KAFKA_HOST=127.0.0.1
KAFKA_HOME="$DRT_CACHE_DIR/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
# DRT_KAFKA_SECURE=1: a separate broker whose only client listener is SASL_SSL
# (SCRAM-SHA-512 user `drt`, certificate from the throwaway CA in lib.sh), by
# default on 9094/9095 with its data in $DRT_VAR_DIR/kafka-secure. The status
# and stop scripts need the same variable to find it.
if [[ ${DRT_KAFKA_SECURE:-0} == 1 ]]; then
    KAFKA_SECURE=1
    KAFKA_PORT="${DRT_KAFKA_PORT:-9094}"
    KAFKA_CONTROLLER_PORT="${DRT_KAFKA_CONTROLLER_PORT:-9095}"
    KAFKA_DIR="$DRT_VAR_DIR/kafka-secure"
else
    KAFKA_SECURE=
    KAFKA_PORT="${DRT_KAFKA_PORT:-9092}"
    KAFKA_CONTROLLER_PORT="${DRT_KAFKA_CONTROLLER_PORT:-9093}"
    KAFKA_DIR="$DRT_VAR_DIR/kafka"
fi
KAFKA_SASL_USER=drt         # the dispatcher's user; password in $DRT_SECRETS_DIR/kafka-drt.password
KAFKA_BROKER_USER=kafka-broker  # the broker's own (inter-broker) user
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_CONFIG="$KAFKA_DIR/server.properties"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
# The dispatcher's settings for the secure broker (`set -a; . FILE; set +a`).
KAFKA_CLIENT_ENV="$DRT_VAR_DIR/kafka-secure.env"
