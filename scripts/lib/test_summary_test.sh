#!/usr/bin/env bash
# Tests for test_summary.sh, on output captured from the real runners
# (ctest 3.25, deno 2.9.6, pytest 7.2). Run: bash scripts/lib/test_summary_test.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test_summary.sh
source "${here}/test_summary.sh"
# shellcheck source=testing.sh
source "${here}/testing.sh"

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
esc=$'\e'

# sample NAME: write stdin to a sample file and print its path.
sample() {
  cat >"${tmp}/$1"
  printf '%s\n' "${tmp}/$1"
}

# --- ctest ---------------------------------------------------------------
f="$(sample ctest-mixed <<'OUT'
Test project /tmp/c/b
1/4 Test #1: ok ...............................   Passed    0.00 sec
2/4 Test #2: bad ..............................***Failed    0.00 sec
3/4 Test #3: skip .............................***Skipped   0.00 sec
4/4 Test #4: dis ..............................***Not Run (Disabled)   0.00 sec

67% tests passed, 1 tests failed out of 3

Total Test time (real) =   0.01 sec

The following tests did not run:
	  3 - skip (Skipped)
	  4 - dis (Disabled)

The following tests FAILED:
	  2 - bad (Failed)
Errors while running CTest
OUT
)"
check "ctest: failed, skipped and disabled" "1 1 2" "$(parse_ctest "${f}")"

f="$(sample ctest-two-runs <<'OUT'
100% tests passed, 0 tests failed out of 12

Total Test time (real) =   0.31 sec
== sanitizer build ==
92% tests passed, 1 tests failed out of 12
OUT
)"
check "ctest: two runs are summed" "23 1 0" "$(parse_ctest "${f}")"
check "ctest: no summary is zero" "0 0 0" "$(parse_ctest /dev/null)"

# --- deno ------------------------------------------------------------------
f="$(sample deno-failed <<OUT
running 4 tests from ./a_test.ts
passes ... ${esc}[0m${esc}[32mok${esc}[0m (534µs)
fails => ./a_test.ts:3:6

${esc}[0m${esc}[1m${esc}[31mFAILED${esc}[0m | 2 passed (2 steps) | 1 failed | 1 ignored ${esc}[0m${esc}[38;5;245m(7ms)${esc}[0m

${esc}[0m${esc}[1m${esc}[31merror${esc}[0m: Test failed
OUT
)"
check "deno: failed run with colours and steps" "2 1 1" "$(parse_deno "${f}")"

f="$(sample deno-ok <<'OUT'
ok | 40 passed | 0 failed (2s)
OUT
)"
check "deno: all passed" "40 0 0" "$(parse_deno "${f}")"

f="$(sample deno-last-wins <<'OUT'
ok | 1 passed | 0 failed (2ms)
a test printed the line above itself
ok | 12 passed | 0 failed | 3 ignored | 2 filtered out (3s)
OUT
)"
check "deno: the last summary line wins, filtered ones are not counted" "12 0 3" "$(parse_deno "${f}")"
check "deno: crash before any summary is zero" "0 0 0" "$(parse_deno /dev/null)"

# --- pytest ----------------------------------------------------------------
f="$(sample pytest-q <<'OUT'
FAILED py/test_a.py::test_bad - assert False
ERROR py/test_a.py::test_err - RuntimeError
1 failed, 1 passed, 1 skipped, 1 xfailed, 1 error in 0.02s
OUT
)"
check "pytest -q: errors fail, xfailed skip" "1 2 2" "$(parse_pytest "${f}")"

f="$(sample pytest-bordered <<OUT
${esc}[32m==== ${esc}[32m${esc}[1m48 passed${esc}[0m, ${esc}[33m2 skipped${esc}[0m, 3 warnings in 8.71s (0:00:08) ====${esc}[0m
OUT
)"
check "pytest: borders, colours, warnings, long durations" "48 0 2" "$(parse_pytest "${f}")"

f="$(sample pytest-none <<'OUT'
============================ no tests ran in 0.00s =============================
OUT
)"
check "pytest: no tests ran is zero" "0 0 0" "$(parse_pytest "${f}")"

f="$(sample pytest-noise <<'OUT'
test output mentioning 5 passed in 1s from a test's own print
3 passed, 1 xpassed, 2 deselected in 0.40s
OUT
)"
check "pytest: xpassed pass, deselected ignored, last line wins" "4 0 0" "$(parse_pytest "${f}")"

# --- shell tests and settling --------------------------------------------------
f="$(sample shell <<'OUT'
ok - one
not ok - two
shell-tests: 7 passed, 1 failed
OUT
)"
check "shell tests summary" "7 1 0" "$(parse_shell_tests "${f}")"

check "settle: clean pass stays" "5 0 1" "$(settle_counts 0 5 0 1)"
check "settle: no test ran is a failure" "0 1 0" "$(settle_counts 0 0 0 0)"
check "settle: only skips is a failure" "0 1 3" "$(settle_counts 0 0 0 3)"
check "settle: non-zero exit without failures is a failure" "9 1 0" "$(settle_counts 1 9 0 0)"
check "settle: counted failures are kept" "9 2 0" "$(settle_counts 1 9 2 0)"

finish
