#!/usr/bin/env bash
# The README's first command: set the machine up (scripts/bootstrap.sh), start
# an orchestrator on this machine (the embedded default: this machine's Docker
# engine is the Swarm manager and the only worker), run a job end to end with
# `cumulus run`, show `cumulus jobs`, then stop the orchestrator.
# Exits with the job's exit code (0 when all went well).
#
# Usage: bash scripts/quickstart.sh
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "${CUMULUS_ROOT}"

bash scripts/bootstrap.sh </dev/null
# shellcheck source=/dev/null
source .cumulus/env

data_dir="${CUMULUS_DATA_DIR:-${CUMULUS_ROOT}/cumulus-data}"
port="${ORCHESTRATOR_PORT:-50051}"
log="${data_dir}/orchestrator.log"
mkdir -p "${data_dir}"
export CUMULUS_ORCHESTRATOR_URL="127.0.0.1:${port}"

step "starting the orchestrator on 127.0.0.1:${port} (log: ${log})"
ORCHESTRATOR_PORT="${port}" CUMULUS_DATA_DIR="${data_dir}" ORCHESTRATOR_METRICS_PORT=-1 \
  deno run -A main.ts orchestrator >>"${log}" 2>&1 &
orch_pid=$!
stop_orchestrator() {
  if kill -0 "${orch_pid}" 2>/dev/null; then
    kill -TERM "${orch_pid}" && wait "${orch_pid}" || true
  fi
}
trap stop_orchestrator EXIT
for _ in $(seq 1 150); do
  grep -q "listening on" "${log}" 2>/dev/null && break
  kill -0 "${orch_pid}" 2>/dev/null || { tail -n 20 "${log}" >&2; die "the orchestrator exited"; }
  sleep 0.2
done
grep -q "listening on" "${log}" || die "the orchestrator did not start within 30 s (see ${log})"

step "running a job: cumulus run --no-bundle -- sh -c '...'"
set +e
deno run -A main.ts run --no-bundle --gpu-memory 0.5 --duration 60 -- \
  sh -c 'echo "hello from a Swarm container on $(hostname)"; python3 -c "import sys; print(\"python\", sys.version.split()[0])"'
code=$?
set -e

step "cumulus jobs"
deno run -A main.ts jobs --limit 5

step "stopping the orchestrator"
stop_orchestrator
trap - EXIT
if [[ ${code} -eq 0 ]]; then
  step "quickstart done: the job ran on the local Swarm and its output came back"
else
  printf 'error: the job exited with code %d\n' "${code}" >&2
fi
exit "${code}"
