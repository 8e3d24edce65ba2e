#!/usr/bin/env bash
# Install Prometheus (server and promtool) from Debian when either is missing.
# tests/unit/deploy runs promtool on prometheus.yml, alerts.yml and alerts_test.yml;
# tests/integration/test_observability.py starts its own `prometheus` server.
# Starts nothing: apt_install (deploy/lib.sh) keeps the package's service from
# starting; on hosts with systemd it is still enabled for the next boot.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if have promtool && have prometheus; then
    log "promtool present: $(promtool --version 2>&1 | head -n1)"
    exit 0
fi
apt_install prometheus
have promtool || die "promtool still missing after installing prometheus"
have prometheus || die "prometheus still missing after installing prometheus"
log "installed: $(promtool --version 2>&1 | head -n1)"
