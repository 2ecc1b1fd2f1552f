#!/usr/bin/env bash
# The README's first command: set the machine up (scripts/bootstrap.sh), then
# `cumulus up`: start the embedded default on this machine (Docker Swarm with
# this machine as manager and worker, an S3 server for checkpoints, the
# orchestrator on 127.0.0.1:50051, the agent daemon) and run the demo, a
# PyTorch training job that is interrupted midway and resumes from its
# checkpoint by itself. Ends with the demo's summary table.
#
# It leaves the orchestrator, the S3 server and the agent daemon running (data
# in ./cumulus-data) so you can go on with `cumulus run`, `cumulus jobs`, ...;
# `deno run -A main.ts down` stops them and keeps the data.
# Exits with `cumulus up`'s code (0 when the demo succeeded).
#
# Usage: bash scripts/quickstart.sh [cumulus up flags, e.g. --port 50052]
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "${CUMULUS_ROOT}"

bash scripts/bootstrap.sh </dev/null
# shellcheck source=/dev/null
source .cumulus/env

step "cumulus up $*"
set +e
deno run -A main.ts up "$@"
code=$?
set -e
if [[ ${code} -eq 0 ]]; then
  step "quickstart done. Still running: orchestrator, S3 server, agent daemon."
  printf '  source .cumulus/env && deno run -A main.ts jobs   # list jobs\n'
  printf '  deno run -A main.ts down                          # stop them (data kept)\n'
else
  printf 'error: cumulus up exited with code %d\n' "${code}" >&2
fi
exit "${code}"
