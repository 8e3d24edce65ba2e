#!/usr/bin/env bash
# Fetch the Apache Kafka broker jars from Maven Central into the cache:
#   $DRT_CACHE_DIR/kafka-$DRT_KAFKA_VERSION/libs/*.jar
# Does nothing when they are already there. Installs java and mvn when missing.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

stamp="$KAFKA_HOME/.complete"
if [[ -f $stamp ]]; then
    log "Kafka $KAFKA_VERSION already cached in $KAFKA_LIBS"
    exit 0
fi

have java || apt_install default-jre-headless
have mvn || apt_install maven
log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
started=$SECONDS
# Resolve into a temporary directory and rename, so an interrupted fetch never
# looks complete. The local Maven repository sits in the cache, next to the jars.
tmp="$KAFKA_HOME.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$tmp"
mvn -B -q -f "$(dirname "${BASH_SOURCE[0]}")/pom.xml" \
    -Dstyle.color=never -Dmaven.repo.local="$DRT_CACHE_DIR/m2" \
    -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp/libs" 2>&1 \
    | sed 's/\x1b\[[0-9;]*m//g' >&2 # Debian's mvn 3.8 prints colour codes even with -B
[[ -f $tmp/libs/kafka_2.13-$KAFKA_VERSION.jar ]] \
    || die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"
date -u +%FT%TZ >"$tmp/.complete"
rm -rf "$KAFKA_HOME"
mv "$tmp" "$KAFKA_HOME"
log "fetched $(ls "$KAFKA_LIBS" | wc -l) jars ($(du -sh "$KAFKA_LIBS" | cut -f1)) in $((SECONDS - started))s"
