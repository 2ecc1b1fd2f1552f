#!/usr/bin/env bash
# Build the three Cumulus executables into dist/: cumulus (the CLI), cumulus-orchestrator and
# cumulus-agent. `deno task build` runs it. See docs/build.md.
#
# Two ways, chosen here and printed:
#   deno compile                      when DENORT_BIN names an executable denort (Deno's runtime
#                                     for compiled programs); libchronos.so and cumulus-gpu-runc
#                                     (the GPU runtime wrapper the join installs) go beside the agent.
#   offline self-extracting fallback  otherwise (Deno's download site is unreachable here): one
#                                     file per program carrying the Deno runtime, the code,
#                                     node_modules, libchronos.so and cumulus-gpu-runc; the first run
#                                     unpacks it once
#                                     into ~/.cache/cumulus/<version>-<hash>/.
# Nothing is rebuilt when the inputs (code, lockfile, deno, libchronos.so, commit, mode) hash the
# same as the last build's. Builds take a lock, so concurrent runs wait and reuse.
#
# Usage: bash scripts/build.sh [--force] [--copy-to DIR] [-h|--help]
#   --force         rebuild even when dist/ is up to date
#   --copy-to DIR   then copy the executables into DIR while still holding the build lock, so
#                   a concurrent build cannot swap dist/ half-way (used by the tests)
# Environment:
#   DENORT_BIN             denort to compile with (else the offline fallback)
#   CUMULUS_BUILD_COMMIT   commit to stamp instead of `git rev-parse` (e.g. from a tarball)
#   CUMULUS_DIST_DIR       output directory (default dist/)
#   DENO                   deno binary (default .tools/node_modules/deno/deno, then PATH)
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/build_selfextract.sh
source "${CUMULUS_ROOT}/scripts/lib/build_selfextract.sh"

# The programs: name, entry module (relative to the repository), fixed leading arguments, and
# Deno permissions, narrowed to what each needs (docs/build.md says why for each):
# - cumulus: talks gRPC to any orchestrator, reads its flags' variables, and reads only the
#   current directory (the job bundle; `.` resolves when it runs, not at build time).
# - cumulus-orchestrator: gRPC server, Docker API (unix socket or tcp), SSH to agents; reads and
#   writes its data dir, config file and keys, whose paths are run-time configuration. No run,
#   no ffi, no sys.
# - cumulus-agent: Chronos through FFI (which is full native access anyway), its variables,
#   read to find libchronos.so beside the executable, and net + write for `serve`, which stops
#   expired jobs' containers through the Docker socket (DOCKER_HOST, a run-time path); sys=uid,
#   hostname for `join` (it must run as root; the worker's default name is the hostname).
PROGRAMS=(cumulus cumulus-orchestrator cumulus-agent)
declare -A ENTRY=(
  [cumulus]=main.ts
  [cumulus-orchestrator]=main.ts
  [cumulus-agent]=src/agent/main.ts
)
declare -A FIXED_ARGS=(
  [cumulus]=""
  [cumulus-orchestrator]="orchestrator"
  [cumulus-agent]=""
)
# CLIENT_READ is `.` plus the config dir (credentials, up.json), computed when it runs.
declare -A PERMISSIONS=(
  [cumulus]="--allow-net --allow-env --allow-read=CLIENT_READ"
  [cumulus-orchestrator]="--allow-net --allow-env --allow-read --allow-write"
  [cumulus-agent]="--allow-ffi --allow-env --allow-read --allow-write --allow-net --allow-run --allow-sys=uid,hostname"
)
# The commands of `cumulus` that run this machine's embedded default, and the daemons they
# start from the same file (its first argument picks them), with their own permissions
# (offline fallback only: a compiled program has one set). docs/build.md says why for each.
# - up, image: Docker API (unix socket), gRPC to the orchestrator it starts, its data and
#   config dirs, and processes: setsid + this executable for the pieces, bash + docker for
#   an image build, apt-get with --install-prereqs.
# - down: reads pid files, signals the supervisors (Deno needs run for kill, and cat reads
#   /proc), removes up.json.
# - status: reads pid files and the supervisors' records; a process's command line through
#   cat (Deno lets only --allow-all read /proc).
# - supervise: runs its piece, writes its records in the run dir.
# - s3: the S3 server (s3rver) on loopback, objects in a directory.
# - orchestrator, agent: as cumulus-orchestrator and cumulus-agent.
CUMULUS_COMMAND_PERMISSIONS="up|image --allow-net --allow-env --allow-read --allow-write --allow-run --allow-sys=uid
down --allow-env --allow-read --allow-write --allow-run
status --allow-env --allow-read --allow-run=cat
supervise --allow-env --allow-read --allow-write --allow-run
s3 --allow-net --allow-env --allow-read --allow-write --allow-sys
orchestrator ${PERMISSIONS[cumulus-orchestrator]}
agent ${PERMISSIONS[cumulus-agent]}"
declare -A COMMAND_PERMISSIONS=(
  [cumulus]="${CUMULUS_COMMAND_PERMISSIONS}"
  [cumulus-orchestrator]=""
  [cumulus-agent]=""
)

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

force=0
copy_to=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=1 ;;
    --copy-to)
      [[ $# -ge 2 && -n $2 ]] || die "--copy-to needs a directory"
      copy_to="$2"
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done

# Relative paths are the caller's, not the repository's.
dist="${CUMULUS_DIST_DIR:-${CUMULUS_ROOT}/dist}"
[[ ${dist} == /* ]] || dist="${PWD}/${dist}"
[[ -z ${copy_to} || ${copy_to} == /* ]] || copy_to="${PWD}/${copy_to}"
cd "${CUMULUS_ROOT}" || die "cannot cd to ${CUMULUS_ROOT}"
started=${SECONDS}
work="${CUMULUS_ROOT}/build/dist-work"
mkdir -p "${work}" "${dist}"

# One build at a time: a second one waits, then finds dist/ fresh.
exec 9>"${work}/.lock"
if ! flock -n 9; then
  info "another build is running; waiting for it"
  flock 9
fi

# find_deno: the deno used to install and compile (and shipped by the fallback).
find_deno() {
  if [[ -n ${DENO:-} ]]; then
    [[ -x ${DENO} ]] || die "DENO=${DENO} is not executable"
    printf '%s\n' "${DENO}"
  elif [[ -x ${CUMULUS_ROOT}/.tools/node_modules/deno/deno ]]; then
    printf '%s\n' "${CUMULUS_ROOT}/.tools/node_modules/deno/deno"
  elif have deno; then
    command -v deno
  else
    die "deno not found: run scripts/bootstrap.sh (or set DENO)"
  fi
}

# cumulus_version: CUMULUS_VERSION from src/cli/version.ts, the one place it is written.
cumulus_version() {
  local v
  v="$(sed -n 's/^export const CUMULUS_VERSION = "\([^"]*\)";$/\1/p' src/cli/version.ts)"
  [[ ${v} =~ ^[0-9A-Za-z.+-]+$ ]] || die "cannot read CUMULUS_VERSION from src/cli/version.ts"
  printf '%s\n' "${v}"
}

# build_commit: the commit to stamp; "-dirty" when the working tree differs from it. Reads git
# without taking its index lock, so it never disturbs a commit being made beside it.
build_commit() {
  local c
  if [[ -n ${CUMULUS_BUILD_COMMIT:-} ]]; then
    [[ ${CUMULUS_BUILD_COMMIT} =~ ^[0-9A-Za-z._+-]{1,64}$ ]] ||
      die "CUMULUS_BUILD_COMMIT must be 1-64 characters of [0-9A-Za-z._+-]"
    printf '%s\n' "${CUMULUS_BUILD_COMMIT}"
    return
  fi
  if ! c="$(git -C "${CUMULUS_ROOT}" rev-parse --short=12 HEAD 2>/dev/null)"; then
    printf 'unknown\n'
    return
  fi
  if [[ -n "$(git -C "${CUMULUS_ROOT}" --no-optional-locks status --porcelain 2>/dev/null)" ]]; then
    c+="-dirty"
  fi
  printf '%s\n' "${c}"
}

# The GPU runtime wrapper chronos/build.sh builds beside libchronos.so (only where nlohmann_json
# is installed): carried beside the library when there, so `cumulus-agent join` installs it on a
# GPU worker (docs/gpus.md).
GPU_RUNC="chronos/build/cumulus-gpu-runc"

# ensure_chronos: libchronos.so, built when missing or older than its sources. The check keeps
# a build from running CMake in chronos/build while someone else's build runs there.
ensure_chronos() {
  local lib="chronos/build/libchronos.so"
  if [[ ! -f ${lib} ]] || [[ -n "$(find chronos/CMakeLists.txt chronos/include chronos/src \
    -newer "${lib}" -print -quit 2>/dev/null)" ]]; then
    info "building libchronos.so (bash chronos/build.sh release)"
    bash chronos/build.sh release >"${work}/chronos.log" 2>&1 ||
      { cat "${work}/chronos.log" >&2; die "chronos build failed"; }
  fi
  [[ -f ${lib} ]] || die "${lib} missing after the chronos build"
  [[ -f ${GPU_RUNC} ]] ||
    info "note: no ${GPU_RUNC} (nlohmann_json missing?): the build carries no GPU runtime wrapper"
}

# source_files: the code that goes into the package, NUL-separated and sorted: the CLI entry,
# src/ without tests, the .proto files read at run time, the config and lockfile, the demo
# `cumulus up` runs, and what `cumulus image build` builds the job image from (the base-image
# script, the job Dockerfile and the helpers they source; the Python package is in src/).
source_files() {
  find main.ts deno.json deno.lock proto src examples/demo containers/base containers/job \
    scripts/lib/common.sh scripts/lib/mirror.sh -type f \
    ! -name '*_test.ts' ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z
}

# input_hash MODE COMMIT VERSION DENO LIB: what the outputs depend on. Equal hash, equal build.
input_hash() {
  {
    printf 'mode=%s commit=%s version=%s\n' "$1" "$2" "$3"
    printf 'programs=%s\n' "${PROGRAMS[*]}"
    local p
    for p in "${PROGRAMS[@]}"; do
      printf '%s %s %s %s\n' "${p}" "${ENTRY[${p}]}" "${FIXED_ARGS[${p}]}" "${PERMISSIONS[${p}]}"
      printf '%s\n' "${COMMAND_PERMISSIONS[${p}]}"
    done
    source_files | xargs -0 sha256sum
    sha256sum scripts/build.sh scripts/lib/build_selfextract.sh
    sha256sum <"$4"
    sha256sum <"$5"
    if [[ -f ${GPU_RUNC} ]]; then sha256sum <"${GPU_RUNC}"; fi
    if [[ $1 == compile ]]; then sha256sum <"${DENORT_BIN}"; fi
  } | sha256sum | cut -c1-64
}

# stage_app DENO COMMIT: a copy of the code in ${work}/stage/app with its build stamp and its
# own node_modules, installed from the lockfile (offline when the npm cache has it).
stage_app() {
  local deno="$1" commit="$2" app="${work}/stage/app"
  rm -rf "${work}/stage"
  mkdir -p "${app}"
  source_files | tar --null -T - -cf - | tar -xf - -C "${app}"
  cat >"${app}/src/cli/build_info.ts" <<OUT
/**
 * Build stamp of this copy of Cumulus, written by scripts/build.sh.
 * @module
 */

/** Git commit the executables were built from (\`-dirty\` when the tree had changes). */
export const BUILD_COMMIT: string = "${commit}";
OUT
  info "installing npm packages from deno.lock into the package"
  (cd "${app}" && NPM_CONFIG_REGISTRY="${NPM_CONFIG_REGISTRY:-$(npm_registry)}" \
    "${deno}" install --quiet >"${work}/install.log" 2>&1) ||
    { cat "${work}/install.log" >&2; die "deno install failed in ${app}"; }
  [[ -d ${app}/node_modules ]] || die "deno install made no node_modules in ${app}"
}

# build_compiled DENO OUT: `deno compile` each program into OUT; libchronos.so (and the GPU
# runtime wrapper) beside the agent.
build_compiled() {
  local deno="$1" out="$2" p
  for p in "${PROGRAMS[@]}"; do
    info "deno compile ${p} (${PERMISSIONS[${p}]})"
    # shellcheck disable=SC2086 # permissions and fixed arguments are word lists
    (cd "${work}/stage/app" && DENORT_BIN="${DENORT_BIN}" "${deno}" compile --quiet --no-check \
      --output "${out}/${p}" --include proto/ ${PERMISSIONS[${p}]//CLIENT_READ/.} "${ENTRY[${p}]}" \
      ${FIXED_ARGS[${p}]} >"${work}/compile-${p}.log" 2>&1) ||
      { cat "${work}/compile-${p}.log" >&2; die "deno compile of ${p} failed"; }
  done
  cp chronos/build/libchronos.so "${out}/libchronos.so"
  if [[ -f ${GPU_RUNC} ]]; then cp "${GPU_RUNC}" "${out}/cumulus-gpu-runc"; fi
}

# build_fallback DENO VERSION COMMIT OUT: one self-extracting file per program in OUT. They
# carry the same payload, so they share one unpacked copy on the user's machine.
build_fallback() {
  local deno="$1" version="$2" commit="$3" out="$4" pkg="${work}/stage/pkg" p
  mkdir -p "${pkg}/bin" "${pkg}/deno_dir"
  cp -L "${deno}" "${pkg}/bin/deno"
  # Beside bin/deno: the agent runs as `deno run`, so Deno.execPath() is bin/deno.
  cp -L chronos/build/libchronos.so "${pkg}/bin/libchronos.so"
  # The join looks for the wrapper beside the libchronos.so it installs.
  if [[ -f ${GPU_RUNC} ]]; then cp -L "${GPU_RUNC}" "${pkg}/bin/cumulus-gpu-runc"; fi
  mv "${work}/stage/app" "${pkg}/app"
  info "packing the payload (deno, code, node_modules, proto, libchronos.so, cumulus-gpu-runc)"
  # GNU format: node_modules holds symlinks longer than the ustar limit.
  tar --format=gnu --sort=name --owner=0 --group=0 --numeric-owner -C "${pkg}" -cf - . |
    gzip -n -6 >"${work}/stage/payload.tgz"
  for p in "${PROGRAMS[@]}"; do
    info "writing ${p} (${PERMISSIONS[${p}]})"
    selfextract_write "${out}/${p}" "${work}/stage/payload.tgz" "${p}" "${version}" \
      "${commit}" "${ENTRY[${p}]}" "${FIXED_ARGS[${p}]}" "${PERMISSIONS[${p}]}" \
      "${COMMAND_PERMISSIONS[${p}]}" ||
      die "could not write ${out}/${p}"
  done
  printf '%s\n' "$(selfextract_tag "${work}/stage/payload.tgz" "${version}")" >"${out}/.cache-tag"
}

# copy_out: --copy-to's copy of what dist/ holds now (called with the lock held).
copy_out() {
  [[ -n ${copy_to} ]] || return 0
  mkdir -p "${copy_to}"
  local f
  for f in "${PROGRAMS[@]}" libchronos.so cumulus-gpu-runc .cache-tag; do
    if [[ -e ${dist}/${f} ]]; then cp -p "${dist}/${f}" "${copy_to}/${f}"; fi
  done
  info "copied to ${copy_to}"
}

if [[ -n ${DENORT_BIN:-} ]]; then
  [[ -f ${DENORT_BIN} && -x ${DENORT_BIN} ]] || die "DENORT_BIN=${DENORT_BIN} is not an executable file"
  mode=compile
  step "build: deno compile (DENORT_BIN=${DENORT_BIN})"
else
  mode=fallback
  step "build: offline self-extracting fallback (no DENORT_BIN, so no deno compile)"
fi

deno="$(find_deno)"
version="$(cumulus_version)"
commit="$(build_commit)"
info "cumulus ${version}, commit ${commit}, deno $("${deno}" --version | head -n 1 | cut -d' ' -f2)"
ensure_chronos
hash="$(input_hash "${mode}" "${commit}" "${version}" "${deno}" chronos/build/libchronos.so)"

stamp="${dist}/.build-stamp"
fresh=1
[[ -f ${stamp} && "$(cat "${stamp}")" == "${mode} ${hash}" ]] || fresh=0
for p in "${PROGRAMS[@]}"; do [[ -x ${dist}/${p} ]] || fresh=0; done
if [[ ${mode} == compile && ! -f ${dist}/libchronos.so ]]; then fresh=0; fi
if [[ ${fresh} -eq 1 && ${force} -eq 0 ]]; then
  step "build: up to date (inputs ${hash:0:12}); nothing to do ($((SECONDS - started)) s)"
  for p in "${PROGRAMS[@]}"; do info "${dist}/${p}"; done
  copy_out
  exit 0
fi

step "build: staging the code (inputs ${hash:0:12})"
stage_app "${deno}" "${commit}"
out="${work}/out"
rm -rf "${out}"
mkdir -p "${out}"
step "build: ${mode} of ${PROGRAMS[*]}"
if [[ ${mode} == compile ]]; then
  build_compiled "${deno}" "${out}"
else
  build_fallback "${deno}" "${version}" "${commit}" "${out}"
fi

# Rename each file into dist/: a program already running from the old file keeps its inode.
rm -f "${stamp}"
for f in "${PROGRAMS[@]}" libchronos.so cumulus-gpu-runc .cache-tag; do
  if [[ -e ${out}/${f} ]]; then
    mv -f "${out}/${f}" "${dist}/${f}"
  else
    rm -f "${dist:?}/${f}"
  fi
done
printf '%s %s\n' "${mode}" "${hash}" >"${stamp}"
rm -rf "${work}/stage" "${out}"

step "build: done (${mode}, $((SECONDS - started)) s)"
for f in "${PROGRAMS[@]}" libchronos.so cumulus-gpu-runc; do
  if [[ -e ${dist}/${f} ]]; then info "$(du -h "${dist}/${f}" | cut -f1)	${dist}/${f}"; fi
done
if [[ ${mode} == fallback ]]; then
  info "first run unpacks once into \${XDG_CACHE_HOME:-\$HOME/.cache}/cumulus/$(cat "${dist}/.cache-tag")/"
fi
copy_out
