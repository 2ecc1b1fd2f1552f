#!/usr/bin/env bash
# Set up everything Cumulus needs on a Debian bookworm machine that has Node.js
# and npm: Debian packages, Deno (from npm, pinned), the Chronos library, a
# Docker engine in Swarm mode, the base and job images, and .cumulus/env.
# Idempotent: a second run only checks, and says "(cached)". See docs/setup.md.
#
# Usage: bash scripts/bootstrap.sh
set -euo pipefail

# Debian packages the project needs (build, tests, engine, OpenCL, Python).
# Add yours here; a second run installs only what is missing.
CUMULUS_APT_PACKAGES=(
  docker.io docker-registry debootstrap makeself openssh-server iproute2 git
  cmake g++ make catch2 libyaml-cpp-dev nlohmann-json3-dev sqlite3
  pocl-opencl-icd ocl-icd-opencl-dev opencl-headers clinfo
  python3-torch python3-sklearn python3-xgboost python3-numpy python3-boto3
  python3-grpcio python3-protobuf protobuf-compiler python3-cloudpickle python3-pytest
)
# Deno version installed from npm into .tools/.
CUMULUS_DENO_VERSION="2.9.6"

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/apt.sh
source "${CUMULUS_ROOT}/scripts/lib/apt.sh"
# shellcheck source=lib/deno.sh
source "${CUMULUS_ROOT}/scripts/lib/deno.sh"
# shellcheck source=lib/docker_engine.sh
source "${CUMULUS_ROOT}/scripts/lib/docker_engine.sh"
# shellcheck source=lib/s3rver.sh
source "${CUMULUS_ROOT}/scripts/lib/s3rver.sh"

started=${SECONDS}
cd "${CUMULUS_ROOT}"

step "installing Debian packages"
ensure_apt_packages "${CUMULUS_APT_PACKAGES[@]}"

step "installing Deno ${CUMULUS_DENO_VERSION}"
ensure_deno "${CUMULUS_DENO_VERSION}"
NPM_CONFIG_REGISTRY="${NPM_CONFIG_REGISTRY:-$(npm_registry)}"
export NPM_CONFIG_REGISTRY
export PATH="${CUMULUS_ROOT}/.tools/node_modules/deno:${PATH}"

# Chronos (libchronos.so, chronos_cli) for the agent; chronos/build.sh is
# incremental, and chronos/test.sh reuses the same build directory.
if [[ -f ${CUMULUS_ROOT}/chronos/build.sh ]]; then
  step "building Chronos"
  chronos_log="$(mktemp)"
  if ! bash "${CUMULUS_ROOT}/chronos/build.sh" release >"${chronos_log}" 2>&1 </dev/null; then
    tail -n 30 "${chronos_log}" >&2
    rm -f "${chronos_log}"
    die "chronos/build.sh release failed (output above)"
  fi
  tail -n 1 "${chronos_log}" | sed 's/^/    /'
  rm -f "${chronos_log}"
fi

step "installing s3rver ${CUMULUS_S3RVER_VERSION} (S3-compatible test server)"
ensure_s3rver

step "starting the Docker engine"
ensure_docker_engine

step "initialising Docker Swarm"
ensure_swarm

step "building image ${CUMULUS_BASE_IMAGE:-cumulus-base:bookworm}"
bash "${CUMULUS_ROOT}/containers/base/build.sh"

step "building image cumulus-job"
bash "${CUMULUS_ROOT}/containers/job/build.sh"
job_id="$(docker image inspect --format '{{.Id}}' cumulus-job:latest </dev/null)" ||
  die "cumulus-job:latest missing after the build"

step "writing .cumulus/env"
mkdir -p "${CUMULUS_ROOT}/.cumulus"
env_tmp="$(mktemp "${CUMULUS_ROOT}/.cumulus/env.XXXXXX")"
{
  printf '# Written by scripts/bootstrap.sh; source it: . .cumulus/env\n'
  printf 'export PATH=%q:"${PATH}"\n' "${CUMULUS_ROOT}/.tools/node_modules/deno"
  printf 'export NPM_CONFIG_REGISTRY=%q\n' "${NPM_CONFIG_REGISTRY}"
  printf 'export DOCKER_HOST=%q\n' "${DOCKER_HOST}"
  printf 'export SWARM_MANAGER=%q\n' "$(swarm_manager_value)"
  printf 'export CUMULUS_JOB_IMAGE=%q\n' "cumulus-job:latest"
  printf 'export CUMULUS_S3RVER=%q\n' "$(s3rver_bin)"
} >"${env_tmp}"
mv -f "${env_tmp}" "${CUMULUS_ROOT}/.cumulus/env"
info "DOCKER_HOST=${DOCKER_HOST} CUMULUS_JOB_IMAGE=cumulus-job:latest (${job_id:7:12})"

step "caching Deno's npm dependencies"
deno_precache

step "bootstrap done in $((SECONDS - started)) s"
