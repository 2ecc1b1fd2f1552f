#!/usr/bin/env bash
# Start (or restart on a new image) the dev orchestrator container on the remote box prepared by
# dev-setup.sh: host network, the box's Docker socket, the data volume. Idempotent.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: dev-start.sh [--port PORT] [--env KEY=VALUE]... [--docker-socket PATH]

  --port PORT           ORCHESTRATOR_PORT on the remote box (default: 50051)
  --env KEY=VALUE       extra orchestrator setting (repeatable), e.g. --env MAX_CONCURRENT_JOBS=8
  --docker-socket PATH  the box's Docker socket, mounted for the orchestrator
                        (default: /var/run/docker.sock)
  -h, --help            this text

Uses .cumulus/dev.env written by dev-setup.sh.
USAGE
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Settings written by dev-setup.sh, read by the others.
DEV_ENV="${CUMULUS_DEV_ENV:-${ROOT}/.cumulus/dev.env}"
PORT=50051 SOCKET=/var/run/docker.sock
envs=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --port | --env | --docker-socket)
      [[ $# -ge 2 ]] || { echo "dev-start: $1 needs a value" >&2; exit 2; }
      case "$1" in
        --port) PORT="$2" ;; --docker-socket) SOCKET="$2" ;;
        --env)
          [[ $2 == *=* ]] || { echo "dev-start: --env takes KEY=VALUE" >&2; exit 2; }
          envs+=(-e "$2") ;;
      esac
      shift 2 ;;
    *) echo "dev-start: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ ${PORT} =~ ^[0-9]+$ ]] || { echo "dev-start: --port must be a number" >&2; exit 2; }
[[ -f ${DEV_ENV} ]] || { echo "dev-start: run scripts/dev-setup.sh first" >&2; exit 6; }
# shellcheck source=/dev/null
source "${DEV_ENV}"
unset DOCKER_HOST DOCKER_CONTEXT
dk() { docker --context "${DEV_CONTEXT}" "$@"; }

image="$(dk image inspect -f '{{.Id}}' "${DEV_IMAGE}")"
running="$(dk inspect -f '{{.State.Running}} {{.Image}}' "${DEV_CONTAINER}" 2>/dev/null || true)"
if [[ ${running} == "true ${image}" ]]; then
  echo "dev-start: ${DEV_CONTAINER} already running on ${DEV_CONTEXT} (image ${image:7:12})"
  exit 0
fi
[[ -z ${running} ]] || dk rm -f "${DEV_CONTAINER}" >/dev/null
dk run -d --name "${DEV_CONTAINER}" --label cumulus.dev=1 --restart unless-stopped \
  --network host -v "${SOCKET}:/var/run/docker.sock" -v "${DEV_VOLUME}:/data" \
  -e "ORCHESTRATOR_PORT=${PORT}" "${envs[@]}" "${DEV_IMAGE}" >/dev/null
for _ in $(seq 150); do
  if dk logs "${DEV_CONTAINER}" 2>&1 | grep -q "listening on"; then
    echo "dev-start: ${DEV_CONTAINER} listening on port ${PORT} of the ${DEV_CONTEXT} box"
    exit 0
  fi
  [[ $(dk inspect -f '{{.State.Running}}' "${DEV_CONTAINER}") == true ]] || break
  sleep 0.2
done
echo "dev-start: ${DEV_CONTAINER} did not start; its last log lines:" >&2
dk logs --tail 20 "${DEV_CONTAINER}" >&2 || true
exit 1
