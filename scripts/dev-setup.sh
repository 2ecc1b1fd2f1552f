#!/usr/bin/env bash
# Prepare a remote box to run the orchestrator, driven from here through a Docker context: create
# (or update) the context, build the orchestrator image on that engine from this checkout's
# dist/cumulus-orchestrator, and create its data volume. dev-start.sh, dev-logs.sh and dev-stop.sh
# then use the same context. Idempotent. See docs/workers.md ("Running the orchestrator remotely").
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: dev-setup.sh --host ENDPOINT [--context NAME] [--base-image IMAGE] [--binary PATH]

  --host ENDPOINT      the remote engine, e.g. ssh://me@box or unix:///run/docker.sock
  --context NAME       Docker context to create or update (default: cumulus-dev; [a-z0-9_.-])
  --base-image IMAGE   image with /bin/sh, tar and gzip to build on (default: debian:bookworm-slim)
  --binary PATH        orchestrator executable (default: dist/cumulus-orchestrator; run
                       `deno task build` first)
  -h, --help           this text

Writes .cumulus/dev.env (or $CUMULUS_DEV_ENV): the context, image, volume and container names
the other dev-*.sh scripts use.
USAGE
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Settings written by dev-setup.sh, read by the others.
DEV_ENV="${CUMULUS_DEV_ENV:-${ROOT}/.cumulus/dev.env}"
CONTEXT="cumulus-dev" HOST="" BASE="debian:bookworm-slim" BINARY="${ROOT}/dist/cumulus-orchestrator"
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --host | --context | --base-image | --binary)
      [[ $# -ge 2 ]] || { echo "dev-setup: $1 needs a value" >&2; exit 2; }
      case "$1" in
        --host) HOST="$2" ;; --context) CONTEXT="$2" ;;
        --base-image) BASE="$2" ;; --binary) BINARY="$2" ;;
      esac
      shift 2 ;;
    *) echo "dev-setup: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n ${HOST} ]] || { echo "dev-setup: --host is required (see --help)" >&2; exit 2; }
[[ ${CONTEXT} =~ ^[a-z0-9][a-z0-9_.-]{0,62}$ ]] || { echo "dev-setup: bad context name" >&2; exit 2; }
[[ -x ${BINARY} ]] || { echo "dev-setup: ${BINARY} not found: run 'deno task build'" >&2; exit 6; }

IMAGE="cumulus-orchestrator:${CONTEXT}" VOLUME="${CONTEXT}-data" CONTAINER="${CONTEXT}-orchestrator"
# The context, not DOCKER_HOST, must decide where every command below goes.
unset DOCKER_HOST DOCKER_CONTEXT
dk() { docker --context "${CONTEXT}" "$@"; }

current="$(docker context inspect "${CONTEXT}" --format '{{.Endpoints.docker.Host}}' 2>/dev/null || true)"
if [[ ${current} == "${HOST}" ]]; then
  echo "  [ok]   context ${CONTEXT} → ${HOST}"
elif [[ -n ${current} ]]; then
  docker context update "${CONTEXT}" --docker "host=${HOST}" >/dev/null 2>&1
  echo "  [done] context ${CONTEXT} now → ${HOST} (was ${current})"
else
  docker context create "${CONTEXT}" --description "Cumulus dev orchestrator" \
    --docker "host=${HOST}" >/dev/null 2>&1 ||
    { echo "dev-setup: cannot create context ${CONTEXT} for ${HOST}" >&2; exit 1; }
  echo "  [done] created context ${CONTEXT} → ${HOST}"
fi
dk info --format '{{.Name}}' >/dev/null 2>&1 ||
  { echo "dev-setup: the engine at ${HOST} does not answer" >&2; exit 4; }

stage="$(mktemp -d)"
trap 'rm -rf "${stage}"' EXIT
cp "${BINARY}" "${stage}/cumulus-orchestrator"
cat >"${stage}/Dockerfile" <<DOCKERFILE
FROM ${BASE}
COPY cumulus-orchestrator /usr/local/bin/cumulus-orchestrator
ENV CUMULUS_DATA_DIR=/data SWARM_MANAGER=/var/run/docker.sock
ENTRYPOINT ["/usr/local/bin/cumulus-orchestrator"]
DOCKERFILE
before="$(dk image inspect -f '{{.Id}}' "${IMAGE}" 2>/dev/null || true)"
if ! dk build --quiet --label cumulus.dev=1 -t "${IMAGE}" "${stage}" >"${stage}/build.log" 2>&1; then
  cat "${stage}/build.log" >&2
  echo "dev-setup: building ${IMAGE} on ${CONTEXT} failed (output above)" >&2
  exit 1
fi
after="$(dk image inspect -f '{{.Id}}' "${IMAGE}")"
if [[ ${before} == "${after}" ]]; then
  echo "  [ok]   image ${IMAGE} up to date (${after:7:12})"
else
  echo "  [done] built ${IMAGE} (${after:7:12}) on ${CONTEXT}"
fi

if dk volume inspect "${VOLUME}" >/dev/null 2>&1; then
  echo "  [ok]   volume ${VOLUME}"
else
  dk volume create --label cumulus.dev=1 "${VOLUME}" >/dev/null
  echo "  [done] created volume ${VOLUME} (the orchestrator's data dir)"
fi

mkdir -p "$(dirname "${DEV_ENV}")"
printf 'DEV_CONTEXT=%s\nDEV_IMAGE=%s\nDEV_VOLUME=%s\nDEV_CONTAINER=%s\n' \
  "${CONTEXT}" "${IMAGE}" "${VOLUME}" "${CONTAINER}" >"${DEV_ENV}"
echo "dev-setup: ready; next: bash scripts/dev-start.sh"
