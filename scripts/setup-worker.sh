#!/usr/bin/env bash
# Onboard a Debian/Ubuntu machine as a Cumulus worker in one command: Docker, Swarm membership,
# cumulus-agent + libchronos.so, a dedicated unprivileged user (no docker group) authorised for
# the orchestrator's SSH key through a forced command, and the agent's expiry daemon (as root). Idempotent: a second run
# changes nothing and says so. Self-contained (copy it to the worker alone). See docs/workers.md.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: setup-worker.sh <SWARM_MANAGER> <TOKEN> [options]

  SWARM_MANAGER          manager address host[:port] (port 2377 when omitted)
  TOKEN                  worker join token (docker swarm join-token -q worker, on the manager)

options:
  --agent PATH|URL       cumulus-agent executable (default: dist/cumulus-agent of this checkout)
  --chronos PATH|URL     libchronos.so (default: chronos/build/libchronos.so of this checkout)
  --ssh-pubkey PATH|KEY  the orchestrator's SSH public key (file or the key text)
  --user NAME            unprivileged user the orchestrator logs in as (default: cumulus)
  --advertise-addr ADDR  address this node advertises to the swarm (docker's default otherwise)
  --prefix DIR           install directory (default: /opt/cumulus)
  --state-dir DIR        Chronos state directory (default: /run/chronos)
  --authorized-keys FILE authorized_keys to write (default: ~USER/.ssh/authorized_keys)
  --no-create-user       the user must exist already (do not run useradd/usermod)
  --service-mode MODE    auto (systemd when it runs, else background), systemd, background, none
  --grace S              seconds between SIGTERM and SIGKILL when a job expires (default: 10)
  --gpu-runtime PATH|URL cumulus-gpu-runc, the OCI runtime wrapper that hands jobs their GPUs
                         (default: chronos/build/cumulus-gpu-runc of this checkout); installed and
                         made Docker's default runtime only where GPUs are found (docs/gpus.md)
  --no-gpu-runtime       never install the GPU runtime wrapper
  --docker-config FILE   the Docker daemon config to register it in (default: /etc/docker/daemon.json)
  --gpu-state-dir DIR    GPU grants and MPS pipes (default: /run/cumulus)
  -h, --help             this text

exit codes: 0 ok, 1 other failure, 2 bad usage, 3 wrong join token, 4 manager unreachable,
  5 already in another swarm, 6 agent/library/key missing or not downloadable, 7 no Docker engine
EOF
}

E_USAGE=2 E_TOKEN=3 E_UNREACHABLE=4 E_OTHER_SWARM=5 E_ARTEFACT=6 E_DOCKER=7

fail() { # fail CODE MESSAGE: one line on stderr, then exit CODE
  printf 'setup-worker: error: %s\n' "$2" >&2
  exit "$1"
}

CHANGES=0
changed() {
  CHANGES=$((CHANGES + 1))
  printf '  [done] %s\n' "$*"
}
kept() { printf '  [ok]   %s\n' "$*"; }

# ---- arguments -----------------------------------------------------------------------------
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHECKOUT="$(cd "${SCRIPT_DIR}/.." && pwd)"
AGENT_SRC="" CHRONOS_SRC="" PUBKEY="" WORKER_USER="cumulus" ADVERTISE=""
PREFIX="/opt/cumulus" STATE_DIR="/run/chronos" AUTH_KEYS="" CREATE_USER=1
SERVICE_MODE="auto" GRACE=10
GPU_RUNTIME_SRC="" GPU_RUNTIME=1 DOCKER_CONFIG="/etc/docker/daemon.json" GPU_STATE_DIR="/run/cumulus"
positional=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --agent | --chronos | --ssh-pubkey | --user | --advertise-addr | --prefix | --state-dir | \
      --authorized-keys | --service-mode | --grace | --gpu-runtime | --docker-config | --gpu-state-dir)
      [[ $# -ge 2 ]] || fail "${E_USAGE}" "$1 needs a value (see --help)"
      case "$1" in
        --agent) AGENT_SRC="$2" ;;
        --chronos) CHRONOS_SRC="$2" ;;
        --ssh-pubkey) PUBKEY="$2" ;;
        --user) WORKER_USER="$2" ;;
        --advertise-addr) ADVERTISE="$2" ;;
        --prefix) PREFIX="$2" ;;
        --state-dir) STATE_DIR="$2" ;;
        --authorized-keys) AUTH_KEYS="$2" ;;
        --service-mode) SERVICE_MODE="$2" ;;
        --grace) GRACE="$2" ;;
        --gpu-runtime) GPU_RUNTIME_SRC="$2" ;;
        --docker-config) DOCKER_CONFIG="$2" ;;
        --gpu-state-dir) GPU_STATE_DIR="$2" ;;
      esac
      shift 2
      ;;
    --no-create-user) CREATE_USER=0; shift ;;
    --no-gpu-runtime) GPU_RUNTIME=0; shift ;;
    -*) fail "${E_USAGE}" "unknown option $1 (see --help)" ;;
    *) positional+=("$1"); shift ;;
  esac
done
[[ ${#positional[@]} -eq 2 ]] || fail "${E_USAGE}" "expected <SWARM_MANAGER> <TOKEN> (see --help)"
MANAGER="${positional[0]}"
TOKEN="${positional[1]}"
[[ ${MANAGER} == *:* ]] || MANAGER="${MANAGER}:2377"
MANAGER_HOST="${MANAGER%:*}"
MANAGER_PORT="${MANAGER##*:}"
[[ ${MANAGER_PORT} =~ ^[0-9]+$ ]] || fail "${E_USAGE}" "bad manager address '${MANAGER}'"
[[ ${TOKEN} =~ ^SWMTKN-1-[0-9a-z]+-[0-9a-z]+$ ]] ||
  fail "${E_TOKEN}" "wrong join token: not a Swarm token (expected SWMTKN-1-...)"
[[ ${WORKER_USER} =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || fail "${E_USAGE}" "bad user name '${WORKER_USER}'"
[[ ${GRACE} =~ ^[0-9]+$ ]] || fail "${E_USAGE}" "--grace must be whole seconds"
case "${SERVICE_MODE}" in auto | systemd | background | none) ;; *)
  fail "${E_USAGE}" "--service-mode must be auto, systemd, background or none" ;;
esac
# These paths end up in the forced command and the unit file: keep them to plain characters.
for p in "${PREFIX}" "${STATE_DIR}" "${GPU_STATE_DIR}"; do
  [[ ${p} =~ ^/[A-Za-z0-9_./-]+$ ]] || fail "${E_USAGE}" "paths must be absolute and plain: '${p}'"
done
[[ -n ${AGENT_SRC} ]] || AGENT_SRC="${CHECKOUT}/dist/cumulus-agent"
[[ -n ${CHRONOS_SRC} ]] || CHRONOS_SRC="${CHECKOUT}/chronos/build/libchronos.so"
[[ -n ${GPU_RUNTIME_SRC} ]] || GPU_RUNTIME_SRC="${CHECKOUT}/chronos/build/cumulus-gpu-runc"

# GPUs on this host (docs/gpus.md). # CUMULUS_GPU_ROOT lets tests
# point the GPU detection at a fixture tree.
gpu_root="${CUMULUS_GPU_ROOT:-}"
gpu_vendor=""
if compgen -G "${gpu_root}/proc/driver/nvidia/gpus/*/information" >/dev/null; then
  gpu_vendor=nvidia
elif [[ -e ${gpu_root}/dev/kfd ]]; then
  gpu_vendor=amd
elif compgen -G "${gpu_root}/dev/dri/renderD*" >/dev/null; then
  gpu_vendor=intel
fi
if [[ ${GPU_RUNTIME} -eq 1 && -n ${gpu_vendor} && ${WORKER_USER} != root ]]; then
  # The runtime wrapper (root) trusts only root-owned device grants, which the agent writes; and
  # the MPS control daemon starts a server as each client's user: jobs run as root in their
  # containers, so only a root daemon, started by the agent, can serve them.
  fail "${E_USAGE}" "${gpu_vendor} GPUs found: the agent must run as root to write the device grants (and start the MPS daemons) that hand jobs their GPUs; rerun with --user root --no-create-user (or --no-gpu-runtime)"
fi

echo "setup-worker: joining ${MANAGER} as a Cumulus worker"

# ---- 1. Docker -----------------------------------------------------------------------------
if command -v docker >/dev/null 2>&1; then
  kept "docker CLI installed"
else
  command -v apt-get >/dev/null 2>&1 || fail "${E_DOCKER}" "no docker and no apt-get to install it"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null ||
    fail "${E_DOCKER}" "apt-get install docker.io failed"
  changed "installed docker.io"
fi
if docker info >/dev/null 2>&1; then
  kept "Docker engine answering${DOCKER_HOST:+ at ${DOCKER_HOST}}"
elif [[ -d /run/systemd/system ]]; then
  systemctl enable --now docker >/dev/null 2>&1 || fail "${E_DOCKER}" "systemctl start docker failed"
  docker info >/dev/null 2>&1 || fail "${E_DOCKER}" "the Docker engine does not answer"
  changed "started the Docker engine (systemd)"
else
  fail "${E_DOCKER}" "the Docker engine does not answer${DOCKER_HOST:+ at ${DOCKER_HOST}}; start dockerd"
fi

# ---- 2. Swarm ------------------------------------------------------------------------------
reachable() {
  # shellcheck disable=SC2016 # $1/$2 are expanded by the inner bash, on purpose
  timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "${MANAGER_HOST}" "${MANAGER_PORT}" 2>/dev/null
}
reachable || fail "${E_UNREACHABLE}" "swarm manager ${MANAGER} unreachable (no TCP answer in 5 s)"
state="$(docker info --format '{{.Swarm.LocalNodeState}}')"
if [[ ${state} == active ]]; then
  managers="$(docker info --format '{{range .Swarm.RemoteManagers}}{{.Addr}} {{end}}')"
  [[ " ${managers} " == *" ${MANAGER} "* ]] ||
    fail "${E_OTHER_SWARM}" "already in another swarm (managers: ${managers}); run 'docker swarm leave' first"
  # On a manager the token can be checked; a worker cannot read it.
  if [[ $(docker info --format '{{.Swarm.ControlAvailable}}') == true ]]; then
    if [[ ${TOKEN} != "$(docker swarm join-token -q worker)" &&
      ${TOKEN} != "$(docker swarm join-token -q manager)" ]]; then
      fail "${E_TOKEN}" "wrong join token: it is not this swarm's worker or manager token"
    fi
  fi
  kept "already a member of the swarm at ${MANAGER}"
else
  join=(docker swarm join --token "${TOKEN}")
  [[ -z ${ADVERTISE} ]] || join+=(--advertise-addr "${ADVERTISE}")
  if ! out="$("${join[@]}" "${MANAGER}" 2>&1)"; then
    case "${out}" in
      *"join token"* | *"token"* | *"fingerprint"*) fail "${E_TOKEN}" "wrong join token: ${out//$'\n'/ }" ;;
      *) fail "${E_UNREACHABLE}" "cannot join the swarm at ${MANAGER}: ${out//$'\n'/ }" ;;
    esac
  fi
  changed "joined the swarm at ${MANAGER}"
fi

# ---- 3. the user ---------------------------------------------------------------------------
if id -u "${WORKER_USER}" >/dev/null 2>&1; then
  kept "user ${WORKER_USER} exists"
elif [[ ${CREATE_USER} -eq 1 ]]; then
  useradd --system --create-home --shell /bin/sh "${WORKER_USER}"
  changed "created the unprivileged user ${WORKER_USER}"
else
  fail 1 "user ${WORKER_USER} does not exist (and --no-create-user was given)"
fi
# No docker group: nothing the orchestrator runs through the forced command talks to Docker; the
# daemon that does (step 6) runs as root (docs/workers.md: who runs what).
if [[ $(id -u "${WORKER_USER}") -ne 0 ]] && id -nG "${WORKER_USER}" | tr ' ' '\n' | grep -qx docker; then
  printf '  [note] %s is in the docker group, which it does not need (gpasswd -d %s docker)\n' \
    "${WORKER_USER}" "${WORKER_USER}"
fi
USER_HOME="$(getent passwd "${WORKER_USER}" | cut -d: -f6)"
USER_GROUP="$(id -gn "${WORKER_USER}")"

# ---- 4. agent and library ------------------------------------------------------------------
TMP="$(mktemp -d)"
trap 'rm -rf "${TMP}"' EXIT

fetch() { # fetch SRC DEST: copy a path or download a URL
  case "$1" in
    http://* | https://*)
      curl -fsSL --retry 2 -o "$2" "$1" || fail "${E_ARTEFACT}" "cannot download $1" ;;
    *)
      [[ -f $1 ]] || fail "${E_ARTEFACT}" "$1 not found (build it, or pass its path or URL)"
      cp "$1" "$2" ;;
  esac
}

install_file() { # install_file SRC DEST MODE WHAT
  fetch "$1" "${TMP}/new"
  if [[ -f $2 ]] && cmp -s "${TMP}/new" "$2"; then
    kept "$4 up to date at $2"
  else
    local verb="installed"
    [[ ! -f $2 ]] || verb="updated"
    install -D -m "$3" "${TMP}/new" "$2.tmp" && mv -f "$2.tmp" "$2"
    changed "${verb} $4 at $2"
  fi
  rm -f "${TMP}/new"
}

AGENT="${PREFIX}/bin/cumulus-agent"
install_file "${AGENT_SRC}" "${AGENT}" 0755 "cumulus-agent"
install_file "${CHRONOS_SRC}" "${PREFIX}/lib/libchronos.so" 0644 "libchronos.so"

if [[ -d ${STATE_DIR} ]]; then
  kept "Chronos state directory ${STATE_DIR}"
else
  install -d -m 0750 -o "${WORKER_USER}" -g "${USER_GROUP}" "${STATE_DIR}"
  changed "created the Chronos state directory ${STATE_DIR}"
fi

AGENT_ENV=(CUMULUS_CHRONOS_PATH="${PREFIX}/lib" CHRONOS_STATE_DIR="${STATE_DIR}")
[[ -z ${DOCKER_HOST:-} ]] || AGENT_ENV+=(DOCKER_HOST="${DOCKER_HOST}")

# ---- 4b. GPU access: the OCI runtime wrapper as Docker's default runtime -------------------
# Swarm cannot pick a runtime or devices per service, so on a GPU worker the wrapper is the
# default runtime and decides per container: only Cumulus jobs holding a partition get devices,
# every other container passes through untouched (docs/gpus.md).
if [[ ${GPU_RUNTIME} -eq 0 ]]; then
  kept "GPU runtime wrapper not installed (--no-gpu-runtime)"
elif [[ -z ${gpu_vendor} ]]; then
  kept "no GPU found: jobs run without device access (partitions are bookkeeping only)"
else
  GPU_RUNC="${PREFIX}/bin/cumulus-gpu-runc"
  install_file "${GPU_RUNTIME_SRC}" "${GPU_RUNC}" 0755 "cumulus-gpu-runc (${gpu_vendor} GPUs found)"
  # Downstream runtime: nvidia-container-toolkit's where it is installed, else runc.
  downstream="$(command -v nvidia-container-runtime || command -v runc || true)"
  [[ -n ${downstream} ]] || fail "${E_DOCKER}" "no runc found for the GPU runtime wrapper to run"
  GRANTS_DIR="${GPU_STATE_DIR}/gpu-grants"
  for d in "${GPU_STATE_DIR}" "${GRANTS_DIR}" "${GPU_STATE_DIR}/mps"; do
    if [[ -d ${d} ]]; then
      kept "directory ${d}"
    else
      # The agent writes the grants; the wrapper (root) reads them and refuses any that others
      # could have written, so the directory is the agent user's (root on NVIDIA) alone.
      install -d -m 0700 -o "${WORKER_USER}" -g "${USER_GROUP}" "${d}"
      changed "created ${d}"
    fi
  done
  AGENT_ENV+=(CUMULUS_GPU_GRANTS_DIR="${GRANTS_DIR}" CUMULUS_MPS_DIR="${GPU_STATE_DIR}/mps")
  command -v python3 >/dev/null 2>&1 ||
    fail 1 "python3 is needed to edit ${DOCKER_CONFIG} (or register ${GPU_RUNC} there by hand)"
  # Merge, never overwrite: other runtimes and settings in daemon.json stay.
  python3 - "${DOCKER_CONFIG}" "${GPU_RUNC}" "${GRANTS_DIR}" "${downstream}" >"${TMP}/daemon.json" <<'PY'
import json, os, sys
path, wrapper, grants, downstream = sys.argv[1:5]
cfg = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) > 0 else {}
cfg.setdefault("runtimes", {})["cumulus"] = {
    "path": wrapper,
    "runtimeArgs": ["--cumulus-grants=" + grants, "--cumulus-runc=" + downstream],
}
cfg["default-runtime"] = "cumulus"
# Every container starts with no_new_privs (Swarm 20.10 has no per-service field for it).
cfg["no-new-privileges"] = True
json.dump(cfg, sys.stdout, indent=2, sort_keys=True)
print()
PY
  if [[ -f ${DOCKER_CONFIG} ]] && cmp -s "${TMP}/daemon.json" "${DOCKER_CONFIG}"; then
    kept "cumulus-gpu-runc is Docker's default runtime (${DOCKER_CONFIG})"
  else
    install -D -m 0644 "${TMP}/daemon.json" "${DOCKER_CONFIG}.tmp" && mv -f "${DOCKER_CONFIG}.tmp" "${DOCKER_CONFIG}"
    changed "made cumulus-gpu-runc Docker's default runtime in ${DOCKER_CONFIG} (downstream ${downstream})"
    if [[ -d /run/systemd/system && ${DOCKER_CONFIG} == /etc/docker/daemon.json ]]; then
      systemctl restart docker || fail "${E_DOCKER}" "systemctl restart docker failed"
      changed "restarted the Docker engine to load the runtime"
    else
      printf '  [note] restart dockerd so that it loads %s\n' "${DOCKER_CONFIG}"
    fi
  fi
fi

# ---- 5. the orchestrator's key, with the forced command ------------------------------------
if [[ -n ${PUBKEY} ]]; then
  if [[ -f ${PUBKEY} ]]; then key="$(head -n 1 "${PUBKEY}")"; else key="${PUBKEY}"; fi
  [[ ${key} =~ ^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521))\ [A-Za-z0-9+/=]+(\ .*)?$ ]] ||
    fail "${E_ARTEFACT}" "--ssh-pubkey is not an OpenSSH public key"
  key_body="$(cut -d' ' -f1-2 <<<"${key}")"
  [[ -n ${AUTH_KEYS} ]] || AUTH_KEYS="${USER_HOME}/.ssh/authorized_keys"
  # No shell sees user data: the agent parses SSH_ORIGINAL_COMMAND as a JSON argv itself.
  line="command=\"env ${AGENT_ENV[*]} ${AGENT} ssh-dispatch\",no-pty,no-port-forwarding"
  line+=",no-agent-forwarding,no-X11-forwarding ${key_body} cumulus-orchestrator"
  if [[ -f ${AUTH_KEYS} ]] && grep -qxF -- "${line}" "${AUTH_KEYS}"; then
    kept "orchestrator key authorised (forced command) in ${AUTH_KEYS}"
  else
    install -d -m 0700 -o "${WORKER_USER}" -g "${USER_GROUP}" "$(dirname "${AUTH_KEYS}")"
    # Replace an older line for the same key (e.g. another install prefix), keep the others.
    if [[ -f ${AUTH_KEYS} ]]; then grep -vF -- "${key_body}" "${AUTH_KEYS}" >"${TMP}/keys" || true; fi
    printf '%s\n' "${line}" >>"${TMP}/keys"
    install -m 0600 -o "${WORKER_USER}" -g "${USER_GROUP}" "${TMP}/keys" "${AUTH_KEYS}"
    changed "authorised the orchestrator key for ${WORKER_USER} (forced command) in ${AUTH_KEYS}"
  fi
else
  kept "no --ssh-pubkey given: authorized_keys left as it is"
fi

# ---- 6. the agent daemon -------------------------------------------------------------------
if [[ ${SERVICE_MODE} == auto ]]; then
  if [[ -d /run/systemd/system ]]; then SERVICE_MODE=systemd; else SERVICE_MODE=background; fi
fi
SERVE=("${AGENT}" serve --grace "${GRACE}")
case "${SERVICE_MODE}" in
  systemd)
    unit=/etc/systemd/system/cumulus-agent.service
    {
      echo "[Unit]"
      echo "Description=Cumulus agent: Chronos partition expiry"
      echo "After=docker.service"
      echo "[Service]"
      # Root: it stops expired jobs' containers through the Docker socket. Chronos keeps the
      # state files it writes owned by the state directory's owner (the login).
      echo "User=root"
      for kv in "${AGENT_ENV[@]}"; do echo "Environment=${kv}"; done
      echo "ExecStart=${SERVE[*]}"
      echo "Restart=always"
      echo "RestartSec=1"
      echo "[Install]"
      echo "WantedBy=multi-user.target"
    } >"${TMP}/unit"
    if [[ -f ${unit} ]] && cmp -s "${TMP}/unit" "${unit}"; then
      kept "systemd unit ${unit}"
    else
      install -m 0644 "${TMP}/unit" "${unit}"
      systemctl daemon-reload
      changed "wrote ${unit}"
      systemctl restart cumulus-agent
    fi
    if systemctl is-active --quiet cumulus-agent && systemctl is-enabled --quiet cumulus-agent; then
      kept "cumulus-agent.service running"
    else
      systemctl enable --now cumulus-agent >/dev/null 2>&1
      changed "started cumulus-agent.service"
    fi
    ;;
  background)
    sup="${PREFIX}/bin/cumulus-agent-supervise"
    pidfile="${PREFIX}/run/agent.pid"
    logfile="${PREFIX}/log/agent.log"
    # The supervisor restarts the daemon when it dies (1 s pause); its own pid is in the pid file.
    {
      echo '#!/bin/sh'
      echo "# Written by setup-worker.sh: keeps 'cumulus-agent serve' running."
      echo "echo \$\$ > ${pidfile}"
      echo "trap 'kill \$child 2>/dev/null; wait \$child; rm -f ${pidfile}; exit 0' TERM INT"
      echo "while :; do"
      echo "  env ${AGENT_ENV[*]} ${SERVE[*]} >> ${logfile} 2>&1 &"
      echo "  child=\$!"
      echo "  wait \$child"
      echo "  echo \"\$(date -u +%FT%TZ) cumulus-agent serve exited (\$?), restarting\" >> ${logfile}"
      echo "  sleep 1"
      echo "done"
    } >"${TMP}/sup"
    install -d -m 0755 "${PREFIX}/run" "${PREFIX}/log"
    restart=0
    if [[ -f ${sup} ]] && cmp -s "${TMP}/sup" "${sup}"; then
      kept "supervisor ${sup}"
    else
      install -m 0755 "${TMP}/sup" "${sup}"
      changed "wrote the supervisor ${sup}"
      restart=1
    fi
    pid="$(cat "${pidfile}" 2>/dev/null || true)"
    alive=0
    if [[ ${pid} =~ ^[0-9]+$ ]] && kill -0 "${pid}" 2>/dev/null &&
      tr '\0' ' ' <"/proc/${pid}/cmdline" | grep -qF "${sup}"; then
      alive=1
    fi
    if [[ ${alive} -eq 1 && ${restart} -eq 1 ]]; then
      kill "${pid}"
      for _ in $(seq 50); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
      alive=0
    fi
    if [[ ${alive} -eq 1 ]]; then
      kept "agent daemon running (supervisor pid ${pid})"
    else
      # As root, like this script: the daemon is Docker's client on this machine.
      setsid /bin/sh "${sup}" </dev/null >/dev/null 2>&1 &
      for _ in $(seq 50); do [[ -s ${pidfile} ]] && break; sleep 0.1; done
      changed "started the agent daemon (supervisor pid $(cat "${pidfile}" 2>/dev/null), log ${logfile})"
    fi
    ;;
  none) kept "agent daemon not managed here (--service-mode none)" ;;
esac

if [[ ${CHANGES} -eq 0 ]]; then
  echo "setup-worker: nothing changed: this worker was already set up"
else
  echo "setup-worker: done, ${CHANGES} change(s)"
fi
