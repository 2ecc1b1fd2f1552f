#!/usr/bin/env bash
# Runs the issue-13 end-to-end checks on the GPU machine (device call 2; docs/gpu_run.md,
# "Issue 13 end to end"), after scripts/gpu/setup.sh (call 1) on the same warm machine:
#
#   bash scripts/gpu/run.sh [CARRY_DIR]          (default .device/gpu/carry; run from the repo root)
#
#   1. deno     bin/deno and node_modules/ from carry/deno.tar.xz (into /opt/deno and the checkout)
#   2. stack    `cumulus up --no-demo` (deno run -A main.ts): the orchestrator and the agent daemon
#               on the Swarm setup.sh made, with no S3 server (checkpoints stay on L1), default
#               image cumulus-job-gpu:latest, gpu_placement auto, and the agent's GPU settings
#               (CUMULUS_GPU_GRANTS_DIR, CUMULUS_MPS_DIR, CHRONOS_STATE_DIR, NVIDIA's OpenCL)
#   3. e2e      scripts/gpu/e2e.py with the Python that has torch, grpcio and cloudpickle
#               (/opt/torch/.venv/bin/python3), printing its table (cases a-f)
#   4. logs     the table to $OUT/e2e.txt, the figures to $OUT/e2e.json, the logs (orchestrator,
#               agent, dockerd, services) to $OUT/run-logs.tar.gz
#
# Env: GPU_E2E_RUN (/run/cumulus: where setup.sh left gpu-e2e.env), GPU_E2E_DENO (/opt/deno),
# GPU_E2E_DATA (/tmp/cumulus-gpu-e2e), GPU_E2E_PORT (50051), GPU_E2E_ARGS (extra e2e.py
# arguments, e.g. "--only a,b" or "--rounds 6"), GPU_E2E_TIMEOUT (seconds for e2e.py, 480).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${root}" || exit 1
carry="$(cd "${1:-${root}/.device/gpu/carry}" 2>/dev/null && pwd)" || carry=""
run_dir="${GPU_E2E_RUN:-/run/cumulus}"
env_file="${run_dir}/gpu-e2e.env"
deno_home="${GPU_E2E_DENO:-/opt/deno}"
data="${GPU_E2E_DATA:-/tmp/cumulus-gpu-e2e}"
port="${GPU_E2E_PORT:-50051}"
out="${OUT:-/tmp/cumulus-gpu-out}"
mkdir -p "${out}"
t_all="$(date +%s)"
say() { echo "[run $(($(date +%s) - t_all)) s] $*"; }
die() {
  echo "run: $*" >&2
  exit 1
}

if [[ ! -f ${env_file} ]]; then
  if [[ -n ${carry} && -f ${carry}/dk.tar.xz ]]; then
    say "no set-up on this machine yet: running scripts/gpu/setup.sh first"
    bash "${root}/scripts/gpu/setup.sh" "${carry}" || die "setup.sh failed"
  else
    die "this machine has no set-up (${env_file} is missing): it is a fresh machine, so call 1" \
      "(bash scripts/gpu/setup.sh, carrying dk.tar.xz and debs) must run again, and this call right after it"
  fi
fi
# shellcheck source=/dev/null
source "${env_file}"
timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  die "the Docker engine of the set-up does not answer on ${DOCKER_HOST}"

# ---- 1. deno --------------------------------------------------------------------------------
[[ -n ${carry} && -f ${carry}/deno.tar.xz ]] || [[ -x ${deno_home}/bin/deno ]] ||
  die "no deno.tar.xz carried (carry .device/gpu/carry/deno.tar.xz)"
stamp="$(stat -c '%s' "${carry}/deno.tar.xz" 2>/dev/null)"
if [[ ! -x ${deno_home}/bin/deno || "$(cat "${deno_home}/.stamp" 2>/dev/null)" != "${stamp}" ]]; then
  say "unpacking deno.tar.xz into ${deno_home}"
  rm -rf "${deno_home}" && mkdir -p "${deno_home}" && tar -C "${deno_home}" -xJf "${carry}/deno.tar.xz" ||
    die "cannot unpack deno.tar.xz"
  echo "${stamp}" >"${deno_home}/.stamp"
fi
if [[ ! -d node_modules/.deno || "$(cat node_modules/.gpu-e2e-stamp 2>/dev/null)" != "${stamp}" ]]; then
  rm -rf node_modules && cp -a "${deno_home}/node_modules" node_modules && echo "${stamp}" >node_modules/.gpu-e2e-stamp ||
    die "cannot copy node_modules into the checkout"
fi
export PATH="${deno_home}/bin:${PATH}"
export DENO_DIR="${deno_home}/deno_dir" DENO_NO_UPDATE_CHECK=1
# Nothing is reachable there: an unreachable registry answers at once instead of timing out.
export NPM_CONFIG_REGISTRY=http://127.0.0.1:9/
deno run -A main.ts version || die "deno does not run main.ts"

# ---- 2. stack -------------------------------------------------------------------------------
export CUMULUS_GPU_PLACEMENT=auto
export CHRONOS_STATE_DIR="${data}/chronos"
export MAX_CONCURRENT_JOBS=4
export ORCHESTRATOR_METRICS_PORT=0
export CUMULUS_ORCHESTRATOR_URL="127.0.0.1:${port}"
unset CUMULUS_S3RVER CUMULUS_S3_BUCKET CUMULUS_S3_ENDPOINT
# A second run on a warm machine starts from scratch: no jobs or partitions of the first.
deno run -A main.ts down --data-dir "${data}" >/dev/null 2>&1
rm -rf "${data}"
mkdir -p "${data}" "${CUMULUS_GPU_GRANTS_DIR}" "${CUMULUS_MPS_DIR}"
chmod 0700 "${CUMULUS_GPU_GRANTS_DIR}"
say "starting the stack: deno run -A main.ts up --no-demo --data-dir ${data} --port ${port}"
timeout 180 deno run -A main.ts up --no-demo --data-dir "${data}" --port "${port}" 2>&1 | tee "${data}/up.txt"
up_rc=${PIPESTATUS[0]}
((up_rc == 0)) || say "cumulus up failed (exit ${up_rc}); collecting logs"
if ((up_rc == 0)); then
  # `up` serves TLS with its own CA and made the first admin token: clients here use both.
  export CUMULUS_ORCHESTRATOR_URL="grpcs://127.0.0.1:${port}" CUMULUS_CA_FILE="${data}/tls/ca.pem"
  CUMULUS_TOKEN="$(cat "${data}/admin-token" 2>/dev/null)" || say "no admin token in ${data}"
  export CUMULUS_TOKEN
  deno run -A main.ts workers --url "${CUMULUS_ORCHESTRATOR_URL}" 2>&1 | tee "${data}/workers.txt"
  deno run -A src/agent/main.ts gpus --json >"${data}/gpus.json" 2>"${data}/gpus.err"
  cat "${data}/gpus.json"
  echo
  if [[ ${GPU_E2E_CPU:-0} != 1 ]] && grep -q '"access":"none"' "${data}/gpus.json"; then
    # Every case needs the GPU in the job: stop here, with what the agent's inventory reads.
    say "the agent maps no GPU (access none): not running e2e.py"
    for f in /proc/driver/nvidia/gpus/*/information; do echo "== ${f}"; cat "${f}"; done
    ls -la /dev/nvidia* 2>&1
    up_rc=3
  fi
fi

# ---- 3. e2e ---------------------------------------------------------------------------------
e2e_rc=1
if ((up_rc == 0)); then
  python="${GPU_E2E_CLIENT_PYTHON:-${GPU_E2E_PYTHON_ENV}/bin/python3}"
  cpu_flag=()
  [[ ${GPU_E2E_CPU:-0} == 1 ]] && cpu_flag=(--cpu)
  say "e2e.py with ${python}"
  # shellcheck disable=SC2086 # GPU_E2E_ARGS is a word list on purpose
  PYTHONPATH="${root}/src/sdk/python" PYTHONUNBUFFERED=1 timeout "${GPU_E2E_TIMEOUT:-480}" \
    "${python}" scripts/gpu/e2e.py --url "${CUMULUS_ORCHESTRATOR_URL}" --out "${out}" \
    "${cpu_flag[@]}" ${GPU_E2E_ARGS:-} 2>&1 | tee "${data}/e2e-output.txt"
  e2e_rc=${PIPESTATUS[0]}
  ((e2e_rc == 124)) && say "e2e.py ran out of time (GPU_E2E_TIMEOUT); its rows so far are in e2e.txt"
fi

# ---- 4. logs --------------------------------------------------------------------------------
say "collecting logs"
{
  docker service ls
  docker ps -a --format '{{.ID}} {{.Image}} {{.Status}} {{.Names}}' | head -n 50
  nvidia-smi 2>&1
  ls -la "${CUMULUS_GPU_GRANTS_DIR}" "${CUMULUS_MPS_DIR}" 2>&1
} >"${data}/state.txt" 2>&1
cp "${GPU_E2E_DOCKER_LOG:-/dev/null}" "${data}/dockerd.log" 2>/dev/null
deno run -A main.ts jobs --all --url "${CUMULUS_ORCHESTRATOR_URL}" >"${data}/jobs.txt" 2>&1
tar -C "$(dirname "${data}")" -czf "${out}/run-logs.tar.gz" --exclude=chronos --exclude='*.sqlite*' \
  --exclude=results --exclude=bundles "$(basename "${data}")" 2>/dev/null
deno run -A main.ts down --data-dir "${data}" >/dev/null 2>&1
say "done: e2e exit ${e2e_rc}; table in ${out}/e2e.txt, logs in ${out}/run-logs.tar.gz"
exit "${e2e_rc}"
