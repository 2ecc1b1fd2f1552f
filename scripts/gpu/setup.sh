#!/usr/bin/env bash
# Sets up the GPU machine for the issue-13 end-to-end run (device call 1; docs/gpu_run.md,
# "Issue 13 end to end"), from the files scripts/gpu/prepare.sh made here and the call carried:
#
#   bash scripts/gpu/setup.sh [CARRY_DIR]        (default .device/gpu/carry; run from the repo root)
#
#   1. docker    Docker from carry/dk.tar.xz into /opt/dk; of its libraries only those the host
#                lacks go on dockerd's LD_LIBRARY_PATH
#   2. opencl    the OpenCL ICD loader, headers, clinfo and nlohmann/json from carry/debs, unpacked
#                with dpkg -x into /tmp/ocl (nothing installed); NVIDIA's OpenCL driver registered
#                in /etc/OpenCL/vendors/nvidia.icd
#   3. chronos   Chronos's CMake build (tests off) -> /opt/cumulus/{lib/libchronos.so,
#                bin/chronos_cli,bin/cumulus-gpu-runc}
#   4. dockerd   started detached (setsid) with cumulus-gpu-runc as its default runtime; the
#                wrapper's settings travel through dockerd's environment (CUMULUS_GPU_RUNC,
#                CUMULUS_GPU_GRANTS_DIR), else through a daemon.json runtimeArgs entry
#   5. probe     a hand-written grant: a container whose env names it gets the GPU's device
#                nodes, the driver's mount and the grant's env (nvidia-smi -L inside), and a
#                container without CUMULUS_JOB_ID gets nothing; proves the env reached the wrapper
#   6. swarm     docker swarm init
#   7. image     containers/job-gpu/build-from-host.sh --python-env /opt/torch/.venv
#                (cumulus-job-gpu:latest, about 80 s)
#
# Idempotent: on a warm machine a second run skips what is done. It ends with a table
# (step, seconds, ok) and writes /run/cumulus/gpu-e2e.env, which scripts/gpu/run.sh sources.
# Output: $OUT/setup.txt and $OUT/setup-logs.tar.gz (or /tmp/cumulus-gpu-out without $OUT).
#
# Every path can be moved with an environment variable, so the whole set-up can be tried on a
# machine with no GPU beside other Docker engines (GPU_E2E_CPU=1: PoCL instead of NVIDIA's
# OpenCL, a stand-in device node for the probe):
#   GPU_E2E_DK (/opt/dk)  GPU_E2E_OCL (/tmp/ocl)  GPU_E2E_PREFIX (/opt/cumulus)
#   GPU_E2E_RUN (/run/cumulus: gpu-grants/, mps/, gpu-e2e.env)  GPU_E2E_DOCKER_SOCK (/var/run/docker.sock)
#   GPU_E2E_DOCKER_ROOT (/tmp/docker)  GPU_E2E_IMAGE (cumulus-job-gpu:latest)
#   GPU_E2E_PYTHON_ENV (/opt/torch/.venv)  GPU_E2E_SWARM_ADDR (first address of hostname -I)
#   GPU_E2E_BUILD (chronos/build-gpu)  GPU_E2E_DOCKERD_MODE (env: the wrapper's settings through
#   dockerd's environment; config: through daemon.json runtimeArgs from the start)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${root}" || exit 1
carry="$(cd "${1:-${root}/.device/gpu/carry}" 2>/dev/null && pwd)" || {
  echo "setup: no carried folder ${1:-.device/gpu/carry} (run scripts/gpu/prepare.sh, carry it)" >&2
  exit 1
}

cpu="${GPU_E2E_CPU:-0}"
dk="${GPU_E2E_DK:-/opt/dk}"
ocl="${GPU_E2E_OCL:-/tmp/ocl}"
prefix="${GPU_E2E_PREFIX:-/opt/cumulus}"
run_dir="${GPU_E2E_RUN:-/run/cumulus}"
sock="${GPU_E2E_DOCKER_SOCK:-/var/run/docker.sock}"
docker_root="${GPU_E2E_DOCKER_ROOT:-/tmp/docker}"
image="${GPU_E2E_IMAGE:-cumulus-job-gpu:latest}"
python_env="${GPU_E2E_PYTHON_ENV:-/opt/torch/.venv}"
build="${GPU_E2E_BUILD:-${root}/chronos/build-gpu}"
grants="${run_dir}/gpu-grants"
mps="${run_dir}/mps"
env_file="${run_dir}/gpu-e2e.env"
out="${OUT:-/tmp/cumulus-gpu-out}"
logs="${run_dir}/setup-logs"
mkdir -p "${out}" "${logs}" "${run_dir}"
export DOCKER_HOST="unix://${sock}"
export PATH="${dk}/bin:/usr/local/nvidia/bin:${PATH}"
export LD_LIBRARY_PATH="${ocl}/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"
multiarch=x86_64-linux-gnu

# ---- table of steps -------------------------------------------------------------------------
names=()
secs=()
oks=()
notes=()
now() { date +%s.%N; }
# step NAME FUNCTION: runs FUNCTION, records its time and outcome; after a failure the remaining
# steps are recorded as skipped. FUNCTION may set `note` (shown in the table).
failed=0
step() {
  local name="$1" fn="$2" t0 rc
  note=""
  if ((failed)); then
    names+=("${name}") secs+=("-") oks+=("skipped") notes+=("an earlier step failed")
    return
  fi
  echo "== ${name}"
  t0="$(now)"
  "${fn}"
  rc=$?
  names+=("${name}")
  secs+=("$(awk -v a="${t0}" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')")
  if ((rc == 0)); then oks+=("ok"); else oks+=("FAIL"); failed=1; fi
  notes+=("${note}")
  echo "   -> ${oks[-1]} (${secs[-1]} s) ${note}"
}
table() {
  local i
  printf '| %-8s | %7s | %-7s | %s\n' step seconds ok note
  printf '|%s|%s|%s|%s\n' ---------- --------- --------- ------
  for i in "${!names[@]}"; do
    printf '| %-8s | %7s | %-7s | %s\n' "${names[$i]}" "${secs[$i]}" "${oks[$i]}" "${notes[$i]}"
  done
}
# bail MESSAGE: print MESSAGE and fail the step.
bail() {
  echo "   error: $*" >&2
  note="$*"
  return 1
}

# ---- 1. docker ------------------------------------------------------------------------------
dk_stamp() { stat -c '%s' "${carry}/dk.tar.xz" 2>/dev/null; }
# missing_libs BINARY...: the library names ldd cannot resolve (with dockerd's library path).
missing_libs() {
  local b
  for b in "$@"; do
    LD_LIBRARY_PATH="${dk}/lib-needed" ldd "${b}" 2>/dev/null | awk '$2 == "=>" && $3 == "not" { print $1 }'
  done | sort -u
}
step_docker() {
  if [[ -x ${dk}/bin/dockerd && -f ${dk}/.stamp && "$(cat "${dk}/.stamp")" == "$(dk_stamp)" ]]; then
    note="already unpacked"
  else
    [[ -f ${carry}/dk.tar.xz ]] || { bail "${carry}/dk.tar.xz is missing (carry .device/gpu/carry/dk.tar.xz)"; return; }
    mkdir -p "${dk}" && tar -C "${dk}" -xJf "${carry}/dk.tar.xz" || { bail "cannot unpack dk.tar.xz"; return; }
    dk_stamp >"${dk}/.stamp"
  fi
  # Only the libraries the host lacks: the carried ones are Debian's and must not shadow newer
  # ones the host has. A carried library may itself need another: resolve until none is missing.
  rm -rf "${dk}/lib-needed" && mkdir -p "${dk}/lib-needed"
  local round lib left
  for round in 1 2 3 4; do
    left="$(missing_libs "${dk}"/bin/* "${dk}"/lib-needed/*.so* 2>/dev/null)"
    [[ -z ${left} ]] && break
    for lib in ${left}; do
      [[ -f ${dk}/lib/${lib} ]] || { bail "${lib} is needed but neither here nor carried"; return; }
      ln -sf "${dk}/lib/${lib}" "${dk}/lib-needed/${lib}"
    done
  done
  left="$(missing_libs "${dk}"/bin/*)"
  [[ -z ${left} ]] || { bail "still unresolved after ${round} rounds: ${left}"; return; }
  note="host lacked: $(cd "${dk}/lib-needed" && echo * | sed 's/^\*$/nothing/')"
  "${dk}/bin/docker" --version >/dev/null || { bail "the docker CLI does not run"; return; }
}

# ---- 2. opencl ------------------------------------------------------------------------------
step_opencl() {
  local deb icd=""
  mkdir -p "${ocl}"
  for deb in "${carry}"/debs/*.deb; do
    [[ -f ${deb} ]] || { bail "no .debs in ${carry}/debs"; return; }
    dpkg -x "${deb}" "${ocl}" || { bail "dpkg -x ${deb} failed"; return; }
  done
  [[ -f ${ocl}/usr/lib/${multiarch}/libOpenCL.so.1 ]] || { bail "no libOpenCL.so.1 in the .debs"; return; }
  [[ -f ${ocl}/usr/include/nlohmann/json.hpp ]] || { bail "no nlohmann/json.hpp in the .debs"; return; }
  if [[ ${cpu} == 1 ]]; then
    note="CPU dry run: the host's OpenCL vendors ($(ls /etc/OpenCL/vendors 2>/dev/null | tr '\n' ' '))"
  else
    for icd in /usr/local/nvidia/lib64/libnvidia-opencl.so.1 /usr/local/nvidia/lib64/libnvidia-opencl.so \
      /usr/lib/${multiarch}/libnvidia-opencl.so.1; do
      [[ -e ${icd} ]] && break
      icd=""
    done
    if [[ -z ${icd} ]]; then
      icd="$(find /usr/local/nvidia /usr/lib /usr/lib64 -name 'libnvidia-opencl.so*' 2>/dev/null | sort | head -n 1)"
    fi
    [[ -n ${icd} ]] || { bail "NVIDIA's OpenCL driver (libnvidia-opencl.so*) not found"; return; }
    mkdir -p /etc/OpenCL/vendors && echo "${icd}" >/etc/OpenCL/vendors/nvidia.icd
    note="nvidia.icd -> ${icd}"
  fi
  "${ocl}/usr/bin/clinfo" -l >"${logs}/clinfo.txt" 2>&1 || { bail "clinfo -l failed: $(tail -n 2 "${logs}/clinfo.txt")"; return; }
  cat "${logs}/clinfo.txt"
  if [[ ${cpu} != 1 ]]; then
    grep -q "NVIDIA" "${logs}/clinfo.txt" || { bail "clinfo lists no NVIDIA device"; return; }
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee "${logs}/nvidia-smi.txt"
  fi
}

# ---- 3. chronos -----------------------------------------------------------------------------
step_chronos() {
  local flags=(
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHRONOS_TESTS=OFF
    -DOpenCL_INCLUDE_DIR="${ocl}/usr/include"
    -DOpenCL_LIBRARY="${ocl}/usr/lib/${multiarch}/libOpenCL.so"
    -DCHRONOS_JSON_INCLUDE="${ocl}/usr/include"
  )
  if [[ ! -f ${build}/CMakeCache.txt ]]; then
    cmake -S chronos -B "${build}" "${flags[@]}" >"${logs}/cmake.txt" 2>&1 ||
      { tail -n 30 "${logs}/cmake.txt"; bail "cmake configure failed (setup-logs: cmake.txt)"; return; }
  fi
  if ! cmake --build "${build}" -j "$(nproc)" >>"${logs}/cmake.txt" 2>&1; then
    tail -n 40 "${logs}/cmake.txt"
    # The project builds with -Werror, and this machine's compiler may be newer than the one the
    # code was written with: a new warning must not cost the whole run. -w silences warnings
    # whatever order the flags come in; the table says it was needed.
    grep -q -- '-Werror' "${logs}/cmake.txt" || { bail "cmake build failed (setup-logs: cmake.txt)"; return; }
    echo "   the build failed on a warning made an error: building again with -w"
    build="${build}-w"
    { cmake -S chronos -B "${build}" "${flags[@]}" -DCMAKE_CXX_FLAGS=-w -DCMAKE_C_FLAGS=-w &&
      cmake --build "${build}" -j "$(nproc)"; } >>"${logs}/cmake.txt" 2>&1 ||
      { tail -n 40 "${logs}/cmake.txt"; bail "cmake build failed, also with -w (setup-logs: cmake.txt)"; return; }
    note="built with -w after a -Werror failure (setup-logs: cmake.txt); "
  fi
  local f
  for f in libchronos.so chronos_cli cumulus-gpu-runc; do
    [[ -f ${build}/${f} ]] || { bail "the build made no ${f}"; return; }
  done
  mkdir -p "${prefix}/lib" "${prefix}/bin"
  # Copied, not linked: the runtime wrapper must not change under a running dockerd mid-build.
  install -m 0755 "${build}/libchronos.so" "${prefix}/lib/libchronos.so"
  install -m 0755 "${build}/chronos_cli" "${build}/cumulus-gpu-runc" "${prefix}/bin/"
  "${prefix}/bin/chronos_cli" --state-dir "${run_dir}/chronos-probe" stats --json >"${logs}/chronos-stats.json" 2>&1 ||
    { cat "${logs}/chronos-stats.json"; bail "chronos_cli stats failed"; return; }
  note+="$(grep -o '"name":"[^"]*"' "${logs}/chronos-stats.json" | head -n 1)"
}

# ---- 4. dockerd -----------------------------------------------------------------------------
docker_answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1 </dev/null; }
dockerd_pid() { cat "${run_dir}/dockerd.pid" 2>/dev/null; }
# start_dockerd MODE: MODE "env" passes the wrapper's settings through dockerd's environment,
# "config" through runtimeArgs in a daemon.json.
start_dockerd() {
  local mode="$1" args=()
  mkdir -p "${docker_root}" "${grants}" "${mps}"
  chmod 0700 "${grants}"
  args=(--host "unix://${sock}" --data-root "${docker_root}" --exec-root "${docker_root}-exec"
    --pidfile "${run_dir}/dockerd.pid" --iptables=false --ip-masq=false --bridge=none)
  if [[ ${mode} == env ]]; then
    args+=(--add-runtime "cumulus=${prefix}/bin/cumulus-gpu-runc" --default-runtime cumulus)
  else
    cat >"${run_dir}/daemon.json" <<EOF
{
  "default-runtime": "cumulus",
  "runtimes": {
    "cumulus": {
      "path": "${prefix}/bin/cumulus-gpu-runc",
      "runtimeArgs": ["--cumulus-runc=${dk}/bin/runc", "--cumulus-grants=${grants}"]
    }
  }
}
EOF
    args+=(--config-file "${run_dir}/daemon.json")
  fi
  # In config mode the wrapper's settings are left out of the environment, so the probe shows
  # that runtimeArgs alone carry them.
  local wrapper_env=(CUMULUS_GPU_RUNC="${dk}/bin/runc" CUMULUS_GPU_GRANTS_DIR="${grants}")
  [[ ${mode} == env ]] || wrapper_env=(-u CUMULUS_GPU_RUNC -u CUMULUS_GPU_GRANTS_DIR)
  echo "--- $(date -Is) starting dockerd (${mode})" >>"${logs}/dockerd.log"
  env "${wrapper_env[@]}" LD_LIBRARY_PATH="${dk}/lib-needed" PATH="${dk}/bin:${PATH}" \
    setsid dockerd "${args[@]}" >>"${logs}/dockerd.log" 2>&1 </dev/null &
  local i
  for i in $(seq 120); do
    docker_answers && break
    sleep 0.5
  done
  docker_answers || { tail -n 20 "${logs}/dockerd.log"; return 1; }
  echo "${mode}" >"${run_dir}/dockerd.mode"
}
stop_dockerd() {
  local pid i
  pid="$(dockerd_pid)"
  [[ -n ${pid} ]] || return 0
  kill "${pid}" 2>/dev/null
  for i in $(seq 100); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.2
  done
  rm -f "${run_dir}/dockerd.pid"
}
step_dockerd() {
  if docker_answers; then
    note="already running ($(cat "${run_dir}/dockerd.mode" 2>/dev/null || echo "started elsewhere"))"
  else
    start_dockerd "${GPU_E2E_DOCKERD_MODE:-env}" || { bail "dockerd did not answer on ${sock} (setup-logs: dockerd.log)"; return; }
    note="started"
  fi
  docker info --format 'server {{.ServerVersion}}, {{.Driver}}, cgroup v{{.CgroupVersion}}, runtimes {{range $k, $v := .Runtimes}}{{$k}} {{end}}, default {{.DefaultRuntime}}' |
    tee -a "${logs}/docker-info.txt"
  [[ "$(docker info --format '{{.DefaultRuntime}}')" == cumulus ]] || { bail "the default runtime is not cumulus"; return; }
}

# ---- 5. probe -------------------------------------------------------------------------------
probe_image=cumulus-setup-probe:1
# probe_grant: writes a grant for the probe's partition like the agent's, and prints the
# container command that checks it.
probe_job="j-5e7000000001"
probe_partition="p-5e7000000001"
write_probe_grant() {
  python3 - "${grants}/${probe_partition}.json" "${probe_job}" "${probe_partition}" "${cpu}" <<'PY'
import json, os, subprocess, sys, glob
path, job, part, cpu = sys.argv[1:5]
gpu = {"vendor": "nvidia", "index": 0, "uuid": "", "pciBusId": ""}
if cpu == "1":
    # A stand-in: the host's /dev/null under another name, as the wrapper's tests do.
    devices = [{"path": "/dev/cumulus-probe0", "hostPath": "/dev/null"}]
    mounts = []
    path_env = {}
else:
    out = subprocess.run(["nvidia-smi", "--query-gpu=uuid,pci.bus_id", "--format=csv,noheader", "-i", "0"],
                         capture_output=True, text=True, check=True).stdout.strip()
    uuid, bus = [s.strip() for s in out.split(",")[:2]]
    gpu.update(uuid=uuid, pciBusId=bus)
    devices = [{"path": p} for p in ["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"]
               if os.path.exists(p)]
    mounts = [{"source": "/usr/local/nvidia", "destination": "/usr/local/nvidia"}]
    path_env = {"PATH": ["/usr/local/nvidia/bin"], "LD_LIBRARY_PATH": ["/usr/local/nvidia/lib64"]}
grant = {"version": 1, "jobId": job, "partitionId": part, "gpu": gpu, "devices": devices, "mounts": mounts,
         "env": {"CUMULUS_SETUP_PROBE": "granted"}, "pathEnv": path_env, "hostIpc": False}
tmp = path + ".tmp"
with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
    json.dump(grant, f)
os.rename(tmp, path)
PY
}
# run_probe CHECK MOUNT_ARGS...: runs CHECK in a job container naming the probe's grant; true
# when the container got the grant's env and device. Leaves the output in `outp`.
run_probe() {
  local check="$1" rc
  shift
  outp="$(docker run --rm --network host "$@" -e CUMULUS_JOB_ID="${probe_job}" \
    -e CUMULUS_PARTITION_IDS="${probe_partition}" "${probe_image}" sh -c "${check}" 2>&1)"
  rc=$?
  echo "${outp}" | tee -a "${logs}/probe.txt"
  ((rc == 0)) && grep -q "probe=granted" <<<"${outp}" && grep -q "device=yes" <<<"${outp}"
}
step_probe() {
  local mounts=() d check outp
  if ! docker image inspect "${probe_image}" >/dev/null 2>&1; then
    # An empty root with mount points; the host's programs come in as read-only binds.
    local rootfs
    rootfs="$(mktemp -d)"
    mkdir -p "${rootfs}"/{usr,bin,lib,lib64,sbin,tmp,proc,sys,dev,etc,root}
    tar -C "${rootfs}" -cf - . | docker import - "${probe_image}" >/dev/null || { rm -rf "${rootfs}"; bail "docker import of the probe image failed"; return; }
    rm -rf "${rootfs}"
  fi
  for d in usr bin lib lib64 sbin; do
    [[ -e /${d} ]] && mounts+=(--mount "type=bind,src=/${d},dst=/${d},readonly")
  done
  write_probe_grant || { bail "cannot write the probe grant"; return; }
  if [[ ${cpu} == 1 ]]; then
    check='echo "probe=$CUMULUS_SETUP_PROBE uuids=$CUMULUS_GPU_UUIDS cuda=$CUDA_VISIBLE_DEVICES"; test -c /dev/cumulus-probe0 && echo device=yes'
  else
    check='echo "probe=$CUMULUS_SETUP_PROBE uuids=$CUMULUS_GPU_UUIDS cuda=$CUDA_VISIBLE_DEVICES"; test -c /dev/nvidia0 && echo device=yes; nvidia-smi -L'
  fi
  if ! run_probe "${check}" "${mounts[@]}"; then
    if [[ "$(cat "${run_dir}/dockerd.mode" 2>/dev/null)" == config ]]; then
      rm -f "${grants}/${probe_partition}.json"
      bail "a job container did not get its grant (setup-logs: probe.txt, dockerd.log)"
      return
    fi
    echo "   the wrapper did not get its settings through dockerd's environment: restarting dockerd with a daemon.json"
    stop_dockerd
    start_dockerd config || { bail "dockerd with daemon.json did not answer (setup-logs: dockerd.log)"; return; }
    run_probe "${check}" "${mounts[@]}" || {
      rm -f "${grants}/${probe_partition}.json"
      bail "a job container did not get its grant, with env or daemon.json (setup-logs: probe.txt, dockerd.log)"
      return
    }
  fi
  rm -f "${grants}/${probe_partition}.json"
  if [[ ${cpu} != 1 ]] && ! grep -q "^GPU 0:" <<<"${outp}"; then
    bail "nvidia-smi -L inside the probe listed no GPU"
    return
  fi
  outp="$(docker run --rm --network host "${mounts[@]}" "${probe_image}" sh -c 'ls /dev; echo "probe=${CUMULUS_SETUP_PROBE:-none}"' 2>&1)"
  echo "${outp}" >>"${logs}/probe.txt"
  if grep -qE "^(nvidia0|cumulus-probe0)$|probe=granted" <<<"${outp}"; then
    bail "a container without CUMULUS_JOB_ID got a device or the grant's env"
    return
  fi
  note="wrapper settings via $(cat "${run_dir}/dockerd.mode"); grant applied ($(grep -m1 -o 'GPU 0:[^(]*' <<<"$(cat "${logs}/probe.txt")" || echo 'stand-in device')); plain container untouched"
}

# ---- 6. swarm -------------------------------------------------------------------------------
step_swarm() {
  local state addr
  state="$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)"
  if [[ ${state} == active ]]; then
    note="already active"
    return 0
  fi
  addr="${GPU_E2E_SWARM_ADDR:-$(hostname -I 2>/dev/null | awk '{ print $1 }')}"
  addr="${addr:-127.0.0.1}"
  docker swarm init --advertise-addr "${addr}" --listen-addr "${addr}:2377" >"${logs}/swarm.txt" 2>&1 ||
    { cat "${logs}/swarm.txt"; bail "docker swarm init failed"; return; }
  note="advertising ${addr}"
}

# ---- 7. image -------------------------------------------------------------------------------
step_image() {
  if docker image inspect "${image}" >/dev/null 2>&1; then
    note="${image} exists"
    return 0
  fi
  [[ -x containers/job-gpu/build-from-host.sh ]] || { bail "containers/job-gpu/build-from-host.sh is missing"; return; }
  bash containers/job-gpu/build-from-host.sh --python-env "${python_env}" --tag "${image}" \
    --init "${dk}/bin/docker-init" 2>&1 | tee "${logs}/image.txt"
  ((PIPESTATUS[0] == 0)) || { bail "build-from-host.sh failed (setup-logs: image.txt)"; return; }
  note="$(docker image inspect --format '{{.Size}}' "${image}" | awk '{ printf "%.1f GB", $1 / 1e9 }')"
}

write_env() {
  cat >"${env_file}" <<EOF
# Written by scripts/gpu/setup.sh: what scripts/gpu/run.sh needs.
export PATH="${dk}/bin:/usr/local/nvidia/bin:\${PATH}"
export DOCKER_HOST="unix://${sock}"
export SWARM_MANAGER="${sock}"
export LD_LIBRARY_PATH="${ocl}/usr/lib/${multiarch}\${LD_LIBRARY_PATH:+:\${LD_LIBRARY_PATH}}"
export CUMULUS_CHRONOS_PATH="${prefix}/lib"
export CUMULUS_GPU_GRANTS_DIR="${grants}"
export CUMULUS_MPS_DIR="${mps}"
export CUMULUS_JOB_IMAGE="${image}"
export GPU_E2E_CPU="${cpu}"
export GPU_E2E_RUN="${run_dir}"
export GPU_E2E_PYTHON_ENV="${python_env}"
export GPU_E2E_DOCKER_LOG="${logs}/dockerd.log"
EOF
}

t_all="$(now)"
step docker step_docker
step opencl step_opencl
step chronos step_chronos
step dockerd step_dockerd
step probe step_probe
step swarm step_swarm
step image step_image
((failed)) || write_env

{
  echo
  echo "set-up on $(hostname) ($(uname -r)), $(awk -v a="${t_all}" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s:"
  table
} | tee "${out}/setup.txt"
tar -C "$(dirname "${logs}")" -czf "${out}/setup-logs.tar.gz" "$(basename "${logs}")" 2>/dev/null
if ((failed)); then
  echo "setup: FAILED (see the table; logs in ${out}/setup-logs.tar.gz)"
  exit 1
fi
echo "setup: ready (${env_file}); next: bash scripts/gpu/run.sh"
