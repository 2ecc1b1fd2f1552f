#!/usr/bin/env bash
# Tests for docker_engine.sh's descriptor hygiene: a daemon it starts must not
# keep the caller's open files (an inherited flock(1) lock once stayed held for
# the engine's whole life). Run: bash scripts/lib/docker_engine_test.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "${here}/common.sh"
# shellcheck source=docker_engine.sh
source "${here}/docker_engine.sh"
# shellcheck source=testing.sh
source "${here}/testing.sh"

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

# A lock held on descriptor 7, as flock(1) hands it to its command.
exec 7>"${tmp}/lock"
flock -n 7

# The engine's subshell: close, then exec the daemon (here, ls of its own fds).
fds="$(
  close_inherited_fds
  exec ls /proc/self/fd
)"
check "only stdin, stdout, stderr (and ls's own dir) stay open" "0 1 2 3" "$(echo ${fds})"

# With descriptor 7 closed in that child, another process can take the lock.
(
  close_inherited_fds
  exec sleep 2
) &
child=$!
sleep 0.2
exec 7>&-
if flock -n "${tmp}/lock" true; then got=free; else got=held; fi
check "the lock is free while the started child runs" "free" "${got}"
kill "${child}" 2>/dev/null || true
wait "${child}" 2>/dev/null || true

finish
