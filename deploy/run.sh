#!/usr/bin/env bash
# The main job: simulate a Rendsburg service day with the real dispatcher core.
#
#   bash deploy/run.sh                      # embedded defaults: 5 vehicles, 10 hours
#   bash deploy/run.sh --vehicles 7 --hours 4 --out out/seven
#
# Needs no Kafka, PostgreSQL or ../shared: the simulation runs the dispatcher
# core with a virtual clock and an in-process bus. Arguments go to `drt simulate`.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash "$DRT_REPO_DIR/deploy/setup.sh"
cd "$DRT_REPO_DIR"
exec "$DRT_REPO_DIR/.venv/bin/drt" simulate --scenario rendsburg "$@"
