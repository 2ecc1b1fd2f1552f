#!/usr/bin/env bash
# Stop the dev orchestrator on the remote box. Keeps its data volume, image and context unless
# --purge is given. Idempotent.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: dev-stop.sh [--purge]

  --purge      also remove the data volume, the image, the Docker context and the settings file
  -h, --help   this text
USAGE
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Settings written by dev-setup.sh, read by the others.
DEV_ENV="${CUMULUS_DEV_ENV:-${ROOT}/.cumulus/dev.env}"
PURGE=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --purge) PURGE=1; shift ;;
    *) echo "dev-stop: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -f ${DEV_ENV} ]] || { echo "dev-stop: nothing set up (no ${DEV_ENV})"; exit 0; }
# shellcheck source=/dev/null
source "${DEV_ENV}"
unset DOCKER_HOST DOCKER_CONTEXT
dk() { docker --context "${DEV_CONTEXT}" "$@"; }

if dk inspect "${DEV_CONTAINER}" >/dev/null 2>&1; then
  # SIGTERM first: the orchestrator finishes its writes and exits 0.
  dk stop -t 10 "${DEV_CONTAINER}" >/dev/null
  dk rm "${DEV_CONTAINER}" >/dev/null
  echo "dev-stop: stopped and removed ${DEV_CONTAINER}"
else
  echo "dev-stop: ${DEV_CONTAINER} is not running"
fi
if [[ ${PURGE} -eq 1 ]]; then
  dk volume rm "${DEV_VOLUME}" >/dev/null 2>&1 && echo "dev-stop: removed volume ${DEV_VOLUME}"
  dk image rm "${DEV_IMAGE}" >/dev/null 2>&1 && echo "dev-stop: removed image ${DEV_IMAGE}"
  docker context rm "${DEV_CONTEXT}" >/dev/null 2>&1 && echo "dev-stop: removed context ${DEV_CONTEXT}"
  rm -f "${DEV_ENV}"
fi
