#!/usr/bin/env bash
# Show the dev orchestrator's logs from the remote box (see dev-setup.sh).
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: dev-logs.sh [-f] [--tail N]

  -f, --follow   keep printing new lines
  --tail N       only the last N lines (default: all)
  -h, --help     this text
USAGE
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Settings written by dev-setup.sh, read by the others.
DEV_ENV="${CUMULUS_DEV_ENV:-${ROOT}/.cumulus/dev.env}"
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    -f | --follow) args+=(--follow); shift ;;
    --tail)
      [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || { echo "dev-logs: --tail takes a number" >&2; exit 2; }
      args+=(--tail "$2"); shift 2 ;;
    *) echo "dev-logs: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -f ${DEV_ENV} ]] || { echo "dev-logs: run scripts/dev-setup.sh first" >&2; exit 6; }
# shellcheck source=/dev/null
source "${DEV_ENV}"
unset DOCKER_HOST DOCKER_CONTEXT
exec docker --context "${DEV_CONTEXT}" logs "${args[@]}" "${DEV_CONTAINER}"
