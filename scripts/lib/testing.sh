# shellcheck shell=bash
# A tiny test harness for the shell helpers: check NAME EXPECTED ACTUAL, then
# finish. Output: "ok - NAME" / "not ok - NAME", and a last line
# "shell-tests: N passed, M failed" that scripts/test.sh parses.

_SHELL_TESTS_PASSED=0
_SHELL_TESTS_FAILED=0

# check NAME EXPECTED ACTUAL: one assertion of equality.
check() {
  if [[ $2 == "$3" ]]; then
    _SHELL_TESTS_PASSED=$((_SHELL_TESTS_PASSED + 1))
    printf 'ok - %s\n' "$1"
  else
    _SHELL_TESTS_FAILED=$((_SHELL_TESTS_FAILED + 1))
    printf 'not ok - %s\n    expected: %s\n    actual:   %s\n' "$1" "$2" "$3"
  fi
}

# finish: print the summary line; exit status 1 when any check failed.
finish() {
  printf 'shell-tests: %d passed, %d failed\n' "${_SHELL_TESTS_PASSED}" "${_SHELL_TESTS_FAILED}"
  ((_SHELL_TESTS_FAILED == 0))
}
