# shellcheck shell=bash
# Shared helpers for the Cumulus scripts: progress lines, errors, paths.
# Source it; it defines functions and CUMULUS_ROOT, and runs nothing else.

# Repository root, resolved from this file so scripts work from any cwd.
CUMULUS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CUMULUS_ROOT

# step MESSAGE: one progress line per bootstrap/test step ("==> ...").
step() {
  printf '==> %s\n' "$*"
}

# info MESSAGE: detail under a step.
info() {
  printf '    %s\n' "$*"
}

# warn MESSAGE: something odd that does not stop the script.
warn() {
  printf 'warning: %s\n' "$*" >&2
}

# die MESSAGE: one clear line on stderr, then exit 1.
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# have COMMAND: true when COMMAND is on PATH.
have() {
  command -v "$1" >/dev/null 2>&1
}

# as_root CMD ARGS...: run as root, through sudo when we are not root.
as_root() {
  if [[ ${EUID} -eq 0 ]]; then
    "$@"
  elif have sudo; then
    sudo -n "$@"
  else
    die "need root for: $1 (run as root or install sudo)"
  fi
}

# npm_registry: the npm registry URL npm is configured with (Deno reads it
# from NPM_CONFIG_REGISTRY to resolve npm: specifiers).
npm_registry() {
  local reg
  reg="$(npm config get registry 2>/dev/null | tail -n 1)"
  printf '%s\n' "${reg:-https://registry.npmjs.org/}"
}

# run_logged LOG PATTERN CMD ARGS...: run CMD with stdout and stderr in LOG (stdin from
# /dev/null) and return its status. With CUMULUS_BUILD_PROGRESS=1 (set by `cumulus image
# build`), the lines of LOG that match the extended regex PATTERN are printed as they come,
# indented, so a long build shows where it is.
run_logged() {
  local log="$1" pattern="$2" pid rc=0
  shift 2
  if [[ ${CUMULUS_BUILD_PROGRESS:-} != 1 ]]; then
    "$@" >"${log}" 2>&1 </dev/null || rc=$?
    return "${rc}"
  fi
  : >"${log}"
  "$@" >"${log}" 2>&1 </dev/null &
  pid=$!
  { tail -n +1 -f --pid="${pid}" "${log}" | grep --line-buffered -E "${pattern}" |
    cut -c1-120 | sed -u 's/^/    /'; } || true
  wait "${pid}" || rc=$?
  return "${rc}"
}
