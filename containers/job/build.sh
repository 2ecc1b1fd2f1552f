#!/usr/bin/env bash
# Build the job image from containers/job/Dockerfile, cached by content hash.
# The build context is staged in a temp dir (Dockerfile, packages.txt and the
# `cumulus` Python package), so no repo-wide .dockerignore is needed and the
# hash covers exactly what goes into the image, plus the base image's id.
# Tags: cumulus-job:<first 12 hex of the hash> and cumulus-job:latest.
#
# Usage: containers/job/build.sh [--force]
# Env:   DOCKER_HOST, BASE_IMAGE (default cumulus-base:bookworm),
#        CUMULUS_JOB_REPO (default cumulus-job).
set -euo pipefail

# shellcheck source=../../scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"

base="${BASE_IMAGE:-cumulus-base:bookworm}"
repo="${CUMULUS_JOB_REPO:-cumulus-job}"
force=0
[[ ${1:-} == "--force" ]] && force=1

base_id="$(docker image inspect --format '{{.Id}}' "${base}" 2>/dev/null </dev/null)" || {
  [[ ${base} == cumulus-base:* ]] && die "base image ${base} not found: run containers/base/build.sh"
  info "pulling ${base}"
  docker pull "${base}" </dev/null >/dev/null || die "base image ${base} not found and not pullable"
  base_id="$(docker image inspect --format '{{.Id}}' "${base}" </dev/null)"
}

ctx="$(mktemp -d)"
trap 'rm -rf "${ctx}" "${ctx}.log"' EXIT
cp "${CUMULUS_ROOT}/containers/job/Dockerfile" "${CUMULUS_ROOT}/containers/job/packages.txt" "${ctx}/"
mkdir -p "${ctx}/python"
tar -C "${CUMULUS_ROOT}/src/sdk/python" --exclude=__pycache__ --exclude='*.pyc' -cf - cumulus |
  tar -C "${ctx}/python" -xf -

# Paths, modes and contents of every staged file, in a locale-independent order.
hash="$(
  cd "${ctx}"
  printf 'base %s %s\n' "${base}" "${base_id}"
  find . -type f -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' f; do
    printf '%s %s\n' "$(stat -c '%a' "${f}")" "$(sha256sum "${f}")"
  done
)"
hash="$(printf '%s' "${hash}" | sha256sum | cut -c1-12)"
tag="${repo}:${hash}"

if [[ ${force} -eq 0 ]] && docker image inspect "${tag}" >/dev/null 2>&1 </dev/null; then
  docker tag "${tag}" "${repo}:latest" </dev/null
  info "${tag} exists (cached)"
  exit 0
fi

info "docker build ${tag} (base ${base})"
started=${SECONDS}
# The legacy builder: Debian's engine has no BuildKit, and a newer docker CLI
# without buildx refuses to build unless told to use it.
# With CUMULUS_BUILD_PROGRESS=1, each Dockerfile step is shown as it starts.
if ! DOCKER_BUILDKIT=0 run_logged "${ctx}.log" '^Step [0-9]+/[0-9]+ :' docker build \
  --build-arg "BASE_IMAGE=${base}" --label "org.cumulus.content-hash=${hash}" \
  -t "${tag}" -t "${repo}:latest" "${ctx}"; then
  tail -n 30 "${ctx}.log" >&2 || true
  die "docker build of ${tag} failed (output above)"
fi
info "built ${tag} in $((SECONDS - started)) s"
