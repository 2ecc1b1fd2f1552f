#!/usr/bin/env bash
# Tests for build_selfextract.sh: the stub of the offline-fallback executables, run with real
# sh, tar and gzip on a small payload whose bin/deno is a script that prints what it was given
# (the real runtime is covered by tests/build_e2e_test.ts).
# Run: bash scripts/lib/build_selfextract_test.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=build_selfextract.sh
source "${here}/build_selfextract.sh"
# shellcheck source=testing.sh
source "${here}/testing.sh"

tmp="$(mktemp -d)"
trap 'chmod -R u+w "${tmp}" 2>/dev/null; rm -rf "${tmp}"' EXIT

# The payload: bin/deno prints its arguments one per line, then DENO_DIR, then exits with
# $FAKE_EXIT (default 0).
mkdir -p "${tmp}/pkg/bin" "${tmp}/pkg/app" "${tmp}/pkg/deno_dir"
cat >"${tmp}/pkg/bin/deno" <<'OUT'
#!/bin/sh
for a in "$@"; do printf 'arg=%s\n' "$a"; done
printf 'DENO_DIR=%s\n' "$DENO_DIR"
exit "${FAKE_EXIT:-0}"
OUT
chmod 0755 "${tmp}/pkg/bin/deno"
printf '{}\n' >"${tmp}/pkg/app/deno.json"
printf 'console.log(1);\n' >"${tmp}/pkg/app/main.ts"
tar --format=gnu -C "${tmp}/pkg" -cf - . | gzip -n >"${tmp}/payload.tgz"
tag="$(selfextract_tag "${tmp}/payload.tgz" 1.2.3)"

exe="${tmp}/prog"
selfextract_write "${exe}" "${tmp}/payload.tgz" prog 1.2.3 abc123 main.ts "fixed" \
  "--allow-env --allow-read=."
check "the executable is executable" "yes" "$([[ -x ${exe} ]] && echo yes)"
check "the tag is version-shaprefix" "1" "$([[ ${tag} =~ ^1\.2\.3-[0-9a-f]{16}$ ]] && echo 1)"

cache="${tmp}/cache1"
out="$(CUMULUS_CACHE_DIR="${cache}" "${exe}" "user arg" --flag)"
dir="${cache}/${tag}"
expected="arg=run
arg=--quiet
arg=--cached-only
arg=--no-remote
arg=--no-prompt
arg=--config
arg=${dir}/app/deno.json
arg=--allow-env
arg=--allow-read=.
arg=${dir}/app/main.ts
arg=fixed
arg=user arg
arg=--flag
DENO_DIR=${dir}/deno_dir"
check "first run unpacks and passes fixed, permission and user arguments verbatim" \
  "${expected}" "${out}"
check "the unpacked copy is marked complete" "yes" "$([[ -f ${dir}/.complete ]] && echo yes)"
check "no temporary directory is left" "" "$(find "${cache}" -maxdepth 1 -name '.*-*')"

inode="$(stat -c %i "${dir}")"
touch "${dir}/sentinel"
CUMULUS_CACHE_DIR="${cache}" "${exe}" >/dev/null
check "a later run reuses the unpacked copy" "${inode} yes" \
  "$(stat -c %i "${dir}") $([[ -f ${dir}/sentinel ]] && echo yes)"

set +e
CUMULUS_CACHE_DIR="${cache}" FAKE_EXIT=7 "${exe}" >/dev/null
code=$?
set -e
check "the program's exit code is the executable's" "7" "${code}"

out="$(env -i PATH=/usr/bin:/bin HOME="${tmp}/home" "${exe}" | tail -n 1)"
check "default cache dir is \$HOME/.cache/cumulus" \
  "DENO_DIR=${tmp}/home/.cache/cumulus/${tag}/deno_dir" "${out}"
out="$(env -i PATH=/usr/bin:/bin HOME="${tmp}/home" XDG_CACHE_HOME="${tmp}/xdg" "${exe}" |
  tail -n 1)"
check "XDG_CACHE_HOME is honoured" "DENO_DIR=${tmp}/xdg/cumulus/${tag}/deno_dir" "${out}"

# Concurrent first runs: each must succeed, and exactly one complete copy must remain.
cache="${tmp}/cache2"
pids=()
for i in 1 2 3 4 5 6 7 8; do
  CUMULUS_CACHE_DIR="${cache}" "${exe}" "run-${i}" >"${tmp}/conc-${i}.out" 2>&1 &
  pids+=($!)
done
failures=0
for i in "${!pids[@]}"; do
  wait "${pids[${i}]}" || failures=$((failures + 1))
  grep -qx "arg=run-$((i + 1))" "${tmp}/conc-$((i + 1)).out" || failures=$((failures + 1))
done
check "8 concurrent first runs all succeed" "0" "${failures}"
check "they leave exactly one unpacked copy" "${tag}" "$(ls -A "${cache}")"
check "that copy is complete" "yes" "$([[ -f ${cache}/${tag}/.complete ]] && echo yes)"
check "and no losing copy is left anywhere (not even inside it)" "" \
  "$(find "${cache}" -name '.unpack-*' -o -name '.stale-*')"

# A copy damaged by hand (no completion mark) is replaced, not trusted.
rm "${cache}/${tag}/.complete" "${cache}/${tag}/bin/deno"
out="$(CUMULUS_CACHE_DIR="${cache}" "${exe}" | tail -n 1)" || true
check "a damaged copy is replaced" "DENO_DIR=${cache}/${tag}/deno_dir" "${out}"
check "and nothing is left beside it" "${tag}" "$(ls -A "${cache}")"

# A truncated executable fails with one clear line and leaves nothing half-unpacked.
head -c -100 "${exe}" >"${tmp}/truncated"
chmod 0755 "${tmp}/truncated"
set +e
err="$(CUMULUS_CACHE_DIR="${tmp}/cache3" "${tmp}/truncated" 2>&1 >/dev/null)"
code=$?
set -e
check "a truncated executable exits 1" "1" "${code}"
check "with a line naming the damage" "yes" \
  "$([[ ${err} == "prog: damaged executable ${tmp}/truncated: payload sha256 "* ]] && echo yes)"
check "and unpacks nothing" "" "$(ls -A "${tmp}/cache3")"

# A cache directory owned by someone else is refused (code would run from it).
mkdir -p "${tmp}/foreign"
chown 65534:65534 "${tmp}/foreign"
set +e
err="$(CUMULUS_CACHE_DIR="${tmp}/foreign" "${exe}" 2>&1 >/dev/null)"
code=$?
set -e
check "a cache dir owned by another user is refused" "1 prog: ${tmp}/foreign is not owned by you (set CUMULUS_CACHE_DIR)" \
  "${code} ${err}"

# Words are pasted into sh unquoted: anything but plain flag characters is refused.
set +e
# shellcheck disable=SC2016 # the point: a literal $(...) must be refused
selfextract_stub prog 1 c t s 1 main.ts '' '--allow-read=$(id)' >/dev/null 2>&1
code=$?
set -e
check "selfextract_stub refuses shell syntax in a word" "1" "${code}"

finish
