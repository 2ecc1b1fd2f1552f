#!/usr/bin/env bash
# A dry run, on a machine without a GPU, of what the two device calls do on the GPU machine:
# scripts/gpu/setup.sh then scripts/gpu/run.sh with GPU_E2E_CPU=1 (PoCL's CPU device, CPU
# workloads, the CUDA-only assertions skipped), in a network namespace of its own so its Docker
# engine, Swarm and orchestrator meet nothing of the machine's (other engines, ports 2377/50051).
#
#   bash scripts/gpu/dry_run.sh [e2e.py arguments, e.g. --only a,c]
#
# Needs root, iproute2, nsenter, the .debs and archives of scripts/gpu/prepare.sh, and a Python
# with torch, grpcio and cloudpickle (/usr/bin/python3 here: Debian's python3-torch). Everything
# lives under GPU_DRY_DIR (default /tmp/cumulus-gpu-dry); the engine stays up for a second run
# (quicker: the job image is kept) until `bash scripts/gpu/dry_run.sh --stop`.
set -euo pipefail

# shellcheck source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

dir="${GPU_DRY_DIR:-/tmp/cumulus-gpu-dry}"
ns="${GPU_DRY_NETNS:-cumulus-gpu-dry}"
python="${GPU_DRY_PYTHON:-/usr/bin/python3}"

export GPU_E2E_CPU=1 GPU_E2E_DK="${dir}/dk" GPU_E2E_OCL="${dir}/ocl" GPU_E2E_PREFIX="${dir}/prefix" \
  GPU_E2E_RUN="${dir}/run" GPU_E2E_DOCKER_SOCK="${dir}/docker.sock" GPU_E2E_DOCKER_ROOT="${dir}/docker" \
  GPU_E2E_PYTHON_ENV="${dir}/venv" GPU_E2E_BUILD="${dir}/build" GPU_E2E_DENO="${dir}/deno" \
  GPU_E2E_DATA="${dir}/data" OUT="${dir}/out"

if [[ ${1:-} == --stop ]]; then
  if [[ -f ${dir}/run/dockerd.pid ]]; then
    pid="$(cat "${dir}/run/dockerd.pid")"
    step "stopping the dry run's dockerd (pid ${pid})"
    kill "${pid}" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.2; done
  fi
  # dockerd leaves its network namespace's bind mount (exec-root/netns/default) behind.
  awk -v d="${dir}/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount "${m}" || warn "cannot unmount ${m}"
  done
  ip netns del "${ns}" 2>/dev/null || true
  info "kept ${dir} (remove it by hand)"
  exit 0
fi

[[ ${EUID} -eq 0 ]] || die "the dry run needs root (network namespace, dockerd)"
if ! ip netns list | grep -qw "${ns}"; then
  ip netns add "${ns}"
  ip -n "${ns}" link set lo up
fi
mkdir -p "${dir}"
# The job image is built from a Python environment, as on the GPU machine (/opt/torch/.venv):
# a venv over the system Python that has torch.
if [[ ! -x ${dir}/venv/bin/python3 ]]; then
  "${python}" -m venv --system-site-packages --without-pip "${dir}/venv"
fi
export GPU_E2E_CLIENT_PYTHON="${python}"
in_ns() { nsenter --net="/var/run/netns/${ns}" "$@"; }

step "setup.sh (CPU dry run) in network namespace ${ns}"
in_ns bash "${CUMULUS_ROOT}/scripts/gpu/setup.sh"
step "run.sh (CPU dry run)"
rc=0
GPU_E2E_ARGS="$*" in_ns bash "${CUMULUS_ROOT}/scripts/gpu/run.sh" || rc=$?
info "table: ${dir}/out/e2e.txt; logs: ${dir}/out/run-logs.tar.gz; stop the engine: bash scripts/gpu/dry_run.sh --stop"
exit "${rc}"
