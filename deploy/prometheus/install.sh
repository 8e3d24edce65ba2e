#!/usr/bin/env bash
# Install Prometheus (server and promtool) from Debian when promtool is missing.
# Starts nothing: apt_install (deploy/lib.sh) keeps the package's service from
# starting; on hosts with systemd it is still enabled for the next boot.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if have promtool; then
    log "promtool present: $(promtool --version 2>&1 | head -n1)"
    exit 0
fi
apt_install prometheus
have promtool || die "promtool still missing after installing prometheus"
log "installed: $(promtool --version 2>&1 | head -n1)"
