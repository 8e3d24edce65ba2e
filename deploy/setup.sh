#!/usr/bin/env bash
# Create the project's virtual environment and install the project into it.
#
#   bash deploy/setup.sh        # idempotent; re-installs only when pyproject.toml changed
#
# Uses python3 >= 3.11 from PATH (or $PYTHON). The venv lives in <repo>/.venv.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON="${PYTHON:-python3}"
VENV="$DRT_REPO_DIR/.venv"
STAMP="$VENV/.drt-installed"

have "$PYTHON" || apt_install python3 python3-venv
"$PYTHON" - <<'PY' || die "Python >= 3.11 is required (set PYTHON=...)"
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

if [[ ! -x $VENV/bin/python ]]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV" || { apt_install python3-venv && "$PYTHON" -m venv "$VENV"; }
fi
want="$(sha256sum "$DRT_REPO_DIR/pyproject.toml" | cut -d' ' -f1)"
if [[ ! -f $STAMP || "$(cat "$STAMP")" != "$want" ]]; then
    log "installing drt-dispatch and its dependencies into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$DRT_REPO_DIR[dev,vroom]"
    echo "$want" >"$STAMP"
else
    log "venv up to date"
fi
