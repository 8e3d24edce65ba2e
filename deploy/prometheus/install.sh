#!/usr/bin/env bash
# Install Prometheus (server and promtool) from Debian when promtool is missing.
# Starts nothing: the Debian package's service is not needed by the tests.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if have promtool; then
    log "promtool present: $(promtool --version 2>&1 | head -n1)"
    exit 0
fi
# policy-rc.d exit 101 keeps the package's postinst from starting the service
# (on hosts with systemd it is only enabled; stop it with `systemctl`).
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy"
    trap 'as_root rm -f "$policy"' EXIT
fi
apt_install prometheus
have promtool || die "promtool still missing after installing prometheus"
log "installed: $(promtool --version 2>&1 | head -n1)"
