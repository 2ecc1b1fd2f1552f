#!/usr/bin/env bash
# Tests for deno_groups.sh with a stand-in runner (a script that prints what `deno test` prints,
# and kills itself by a signal where told). Run: bash scripts/lib/deno_groups_test.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test_summary.sh
source "${here}/test_summary.sh"
# shellcheck source=deno_groups.sh
source "${here}/deno_groups.sh"
# shellcheck source=testing.sh
source "${here}/testing.sh"

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
repo="${tmp}/repo"
mkdir -p "${repo}/src" "${repo}/tests/helpers" "${tmp}/logs"
for n in a b c d e; do : >"${repo}/tests/${n}_test.ts"; done
: >"${repo}/tests/helpers/stack.ts"

# The stand-in runner: one passed test per file argument ("src/" counts 3); a file named in
# $CRASH_ONCE makes the first run of its group die by SIGSEGV, one in $FAIL fails a test.
cat >"${tmp}/runner" <<'SH'
#!/usr/bin/env bash
printf '%s\n' "$*" >>"${CALLS}"
passed=0 failed=0
for a in "$@"; do
  if [[ ${a} == "${CRASH_ONCE:-}" && ! -e ${CALLS}.crashed ]]; then
    : >"${CALLS}.crashed"
    echo "running 1 test from ./${a}"
    kill -SEGV $$
  fi
  if [[ ${a} == "${FAIL:-}" ]]; then failed=$((failed + 1)); else passed=$((passed + 1)); fi
  [[ ${a} == src/ ]] && passed=$((passed + 2))
done
if ((failed)); then
  printf 'FAILED | %d passed | %d failed (1s)\n' "${passed}" "${failed}"
  exit 1
fi
printf 'ok | %d passed | 0 failed (1s)\n' "${passed}"
SH
chmod +x "${tmp}/runner"

# run CRASH FAIL: runs the groups (size 2) and prints "STATUS|calls|the groups' total".
run() {
  export CALLS="${tmp}/calls" CRASH_ONCE="$1" FAIL="$2"
  rm -f "${CALLS}" "${CALLS}.crashed"
  local out status=0
  out="$(cd "${repo}" && run_deno_groups "${tmp}/logs" 2 "${tmp}/runner" 2>&1)" || status=$?
  printf '%s\n' "${out}" >"${tmp}/out"
  printf '%s|%s|%s' "${status}" "$(paste -sd';' "${CALLS}")" "$(deno_groups_total "${tmp}/out")"
}

check "groups: src/ alone, then tests/ by two, helpers left out" \
  "0|src/;tests/a_test.ts tests/b_test.ts;tests/c_test.ts tests/d_test.ts;tests/e_test.ts|8 0 0" \
  "$(run "" "")"
check "a group whose runner dies by a signal runs once more, counted once" \
  "0|src/;tests/a_test.ts tests/b_test.ts;tests/c_test.ts tests/d_test.ts;tests/c_test.ts tests/d_test.ts;tests/e_test.ts|8 0 0" \
  "$(run tests/c_test.ts "")"
grep -q '^deno-group: tests-2: the test runner died by signal 11; running the group once more$' \
  "${tmp}/out" && said=yes || said=no
check "the re-run is said" "yes" "${said}"
check "a failed test is not re-run, and fails the layer" \
  "1|src/;tests/a_test.ts tests/b_test.ts;tests/c_test.ts tests/d_test.ts;tests/e_test.ts|7 1 0" \
  "$(run "" tests/b_test.ts)"

f="${tmp}/sample"
printf '%s\n' 'deno-group: src 658 0 0 (exit 0)' 'ok | 1 passed | 0 failed (2ms)' \
  'deno-group: tests-1 40 2 1 (exit 1)' >"${f}"
check "deno_groups_total sums the group lines only" "698 2 1" "$(deno_groups_total "${f}")"

finish
