# shellcheck shell=bash
# Find or start a Docker engine and put it in Swarm mode. No systemd here, so
# we start dockerd ourselves, detached with setsid. Needs common.sh.

# The engine bootstrap starts when none answers.
CUMULUS_DOCKER_SOCK="${CUMULUS_DOCKER_SOCK:-/run/cumulus-docker.sock}"
CUMULUS_DOCKER_DATA="${CUMULUS_DOCKER_DATA:-/var/lib/cumulus-docker}"
CUMULUS_DOCKER_PIDFILE="${CUMULUS_DOCKER_PIDFILE:-/run/cumulus-docker.pid}"
CUMULUS_DOCKER_LOG="${CUMULUS_DOCKER_LOG:-/var/log/cumulus-dockerd.log}"
# Seconds to wait for a freshly started engine to answer.
CUMULUS_DOCKER_START_TIMEOUT="${CUMULUS_DOCKER_START_TIMEOUT:-60}"

# docker_answers HOST: true when an engine answers at HOST (unix://… or tcp://…).
docker_answers() {
  DOCKER_HOST="$1" timeout 10 docker version --format '{{.Server.Version}}' \
    >/dev/null 2>&1 </dev/null
}

# find_docker_engine: print the DOCKER_HOST of the first engine that answers.
find_docker_engine() {
  local candidate
  for candidate in "${DOCKER_HOST:-}" "unix://${CUMULUS_DOCKER_SOCK}" \
    "unix:///var/run/docker.sock"; do
    [[ -n ${candidate} ]] || continue
    if docker_answers "${candidate}"; then
      printf '%s\n' "${candidate}"
      return 0
    fi
  done
  return 1
}

# close_inherited_fds: close every descriptor above 2 of this (sub)shell.
close_inherited_fds() {
  local fd
  for fd in /proc/"${BASHPID}"/fd/*; do
    fd="${fd##*/}"
    [[ ${fd} =~ ^[0-9]+$ && ${fd} -gt 2 ]] || continue
    eval "exec ${fd}>&-" 2>/dev/null || true
  done
}

# exec_as_root CMD...: replace this (sub)shell with CMD, as root (sudo when not root).
exec_as_root() {
  if [[ ${EUID} -eq 0 ]]; then exec "$@"; fi
  have sudo || die "need root for: $1 (run as root or install sudo)"
  exec sudo -n "$@"
}

# start_docker_engine: start our own dockerd and wait until it answers.
start_docker_engine() {
  have dockerd || die "dockerd not found (Debian package docker.io)"
  local host="unix://${CUMULUS_DOCKER_SOCK}" pid
  # A pidfile left by a dead engine makes dockerd refuse to start.
  if [[ -f ${CUMULUS_DOCKER_PIDFILE} ]]; then
    pid="$(cat "${CUMULUS_DOCKER_PIDFILE}" 2>/dev/null || true)"
    if [[ -n ${pid} ]] && kill -0 "${pid}" 2>/dev/null; then
      die "dockerd (pid ${pid}) is running but ${host} does not answer; see ${CUMULUS_DOCKER_LOG}"
    fi
    as_root rm -f "${CUMULUS_DOCKER_PIDFILE}"
  fi
  as_root mkdir -p "$(dirname "${CUMULUS_DOCKER_LOG}")" "${CUMULUS_DOCKER_DATA}"
  info "starting dockerd on ${host} (log: ${CUMULUS_DOCKER_LOG})"
  # setsid + nohup: the engine outlives this script and its terminal. It keeps
  # none of our other open files: an inherited lock (flock(1) hands its command
  # the locked descriptor) would stay held for as long as the engine runs.
  (
    close_inherited_fds
    # --no-new-privileges: every container (Swarm tasks included) starts with no_new_privs,
    # so a setuid binary in a job's image cannot raise its privileges; Docker 20.10's Swarm
    # service spec has no per-service field for it (docs/security.md).
    exec_as_root setsid nohup dockerd --host "${host}" --data-root "${CUMULUS_DOCKER_DATA}" \
      --pidfile "${CUMULUS_DOCKER_PIDFILE}" --no-new-privileges \
      >>"${CUMULUS_DOCKER_LOG}" 2>&1 </dev/null
  ) &
  local waited=0
  until docker_answers "${host}"; do
    if ((waited >= CUMULUS_DOCKER_START_TIMEOUT)); then
      tail -n 20 "${CUMULUS_DOCKER_LOG}" >&2 || true
      die "dockerd did not answer on ${host} within ${CUMULUS_DOCKER_START_TIMEOUT} s (log above: ${CUMULUS_DOCKER_LOG})"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  info "dockerd answers after ~${waited} s"
}

# ensure_docker_engine: set and export DOCKER_HOST to a working engine.
ensure_docker_engine() {
  have docker || die "docker CLI not found (Debian package docker.io)"
  local host
  if host="$(find_docker_engine)"; then
    info "reusing the engine at ${host} (cached)"
  else
    start_docker_engine
    host="unix://${CUMULUS_DOCKER_SOCK}"
  fi
  DOCKER_HOST="${host}"
  export DOCKER_HOST
}

# ensure_swarm: make the engine at DOCKER_HOST a Swarm manager.
# Address the Swarm manager advertises. It sits on a host bridge the project
# creates (198.18.0.0/15 is reserved for benchmarks), so a second test node in
# a network namespace can reach the manager; 127.0.0.1 could not be reached.
CUMULUS_SWARM_ADDR="${CUMULUS_SWARM_ADDR:-198.18.0.1}"
CUMULUS_SWARM_BRIDGE="${CUMULUS_SWARM_BRIDGE:-cumulus0}"

# ensure_swarm_bridge: the host bridge carrying CUMULUS_SWARM_ADDR/24.
ensure_swarm_bridge() {
  if ! ip link show "${CUMULUS_SWARM_BRIDGE}" >/dev/null 2>&1; then
    as_root ip link add "${CUMULUS_SWARM_BRIDGE}" type bridge ||
      die "cannot create bridge ${CUMULUS_SWARM_BRIDGE}"
  fi
  if ! ip -o addr show dev "${CUMULUS_SWARM_BRIDGE}" | grep -q " ${CUMULUS_SWARM_ADDR}/"; then
    as_root ip addr add "${CUMULUS_SWARM_ADDR}/24" dev "${CUMULUS_SWARM_BRIDGE}" ||
      die "cannot give ${CUMULUS_SWARM_BRIDGE} the address ${CUMULUS_SWARM_ADDR}"
  fi
  as_root ip link set "${CUMULUS_SWARM_BRIDGE}" up
  info "bridge ${CUMULUS_SWARM_BRIDGE} ${CUMULUS_SWARM_ADDR}/24"
}

# swarm_init: init a single-manager Swarm advertising CUMULUS_SWARM_ADDR.
swarm_init() {
  info "docker swarm init --advertise-addr ${CUMULUS_SWARM_ADDR}"
  docker swarm init --advertise-addr "${CUMULUS_SWARM_ADDR}" \
    --listen-addr "${CUMULUS_SWARM_ADDR}:2377" </dev/null >/dev/null ||
    die "docker swarm init failed"
}

ensure_swarm() {
  local state
  ensure_swarm_bridge
  state="$(docker info --format '{{.Swarm.LocalNodeState}}' </dev/null 2>/dev/null)" ||
    die "docker info failed on ${DOCKER_HOST}"
  case "${state}" in
    active)
      local manager addr
      manager="$(docker info --format '{{.Swarm.ControlAvailable}}' </dev/null)"
      [[ ${manager} == "true" ]] ||
        die "the engine at ${DOCKER_HOST} is a Swarm worker, not a manager"
      addr="$(docker info --format '{{.Swarm.NodeAddr}}' </dev/null)"
      if [[ ${addr} == "${CUMULUS_SWARM_ADDR}" ]]; then
        info "Swarm already active (cached)"
      elif [[ -z $(docker service ls -q </dev/null) ]]; then
        # An older set-up advertised another address; with no services it is safe to redo.
        info "Swarm advertises ${addr}, not ${CUMULUS_SWARM_ADDR}: re-initialising (no services)"
        docker swarm leave --force </dev/null >/dev/null || die "docker swarm leave failed"
        swarm_init
      else
        warn "Swarm advertises ${addr}, not ${CUMULUS_SWARM_ADDR}; services exist, so it was kept (a second node cannot join)"
      fi
      ;;
    inactive)
      swarm_init
      ;;
    *)
      die "Swarm is in state '${state}' on ${DOCKER_HOST}: fix it by hand (docker swarm leave --force)"
      ;;
  esac
}

# swarm_manager_value: SWARM_MANAGER for the orchestrator: a socket path for
# unix://, the URL itself otherwise.
swarm_manager_value() {
  case "${DOCKER_HOST}" in
    unix://*) printf '%s\n' "${DOCKER_HOST#unix://}" ;;
    *) printf '%s\n' "${DOCKER_HOST}" ;;
  esac
}
