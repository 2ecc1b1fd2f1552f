# shellcheck shell=bash
# Parse test runners' summaries into "PASSED FAILED SKIPPED" (three integers).
# Each parser reads one log file; colours (ANSI escapes) and CRs are ignored.
# Tested by scripts/lib/test_summary_test.sh.

# strip_ansi FILE: the file's text without colour escapes or carriage returns.
strip_ansi() {
  sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\r//g' "$1"
}

# parse_ctest FILE: sum every ctest "X% tests passed, N tests failed out of M"
# line (one per ctest run, e.g. a normal and a sanitizer build). ctest counts
# "(Skipped)" tests in M as passed, so they move from passed to skipped;
# "(Disabled)" tests are not in M and are added to skipped.
parse_ctest() {
  strip_ansi "$1" | awk '
    /tests passed, [0-9]+ tests? failed out of [0-9]+/ {
      for (i = 1; i <= NF; i++) {
        if ($i == "failed" && $(i + 1) == "out" && $(i + 2) == "of") {
          failed += $(i - 2); total += $(i + 3)
        }
      }
    }
    /^[[:space:]]*[0-9]+ - .*\(Skipped\)[[:space:]]*$/ { skipped++; in_total++ }
    /^[[:space:]]*[0-9]+ - .*\(Disabled\)[[:space:]]*$/ { skipped++ }
    END {
      passed = total - failed - in_total
      if (passed < 0) passed = 0
      printf "%d %d %d\n", passed, failed, skipped
    }'
}

# parse_deno FILE: the last "ok | N passed | M failed | K ignored (…)" or
# "FAILED | …" line of `deno test`. Ignored tests count as skipped.
parse_deno() {
  strip_ansi "$1" | awk '
    /^(ok|FAILED) \| [0-9]+ passed/ { line = $0 }
    END {
      p = 0; f = 0; s = 0
      n = split(line, parts, "|")
      for (i = 1; i <= n; i++) {
        field = parts[i]
        if (match(field, /[0-9]+ passed/)) p = substr(field, RSTART, RLENGTH) + 0
        else if (match(field, /[0-9]+ failed/)) f = substr(field, RSTART, RLENGTH) + 0
        else if (match(field, /[0-9]+ ignored/)) s = substr(field, RSTART, RLENGTH) + 0
      }
      printf "%d %d %d\n", p, f, s
    }'
}

# deno_groups_total FILE: sum of the "deno-group: NAME P F S (exit N)" lines that
# scripts/test.sh prints after each `deno test` process of the deno layer.
deno_groups_total() {
  strip_ansi "$1" | awk '
    /^deno-group: [^ ]+ [0-9]+ [0-9]+ [0-9]+ \(exit [0-9]+\)$/ { p += $3; f += $4; s += $5 }
    END { printf "%d %d %d\n", p, f, s }'
}

# parse_pytest FILE: pytest's final summary, e.g. "3 passed, 1 failed,
# 2 skipped, 1 error in 0.52s" (with or without "=" borders). Errors count as
# failed, xfailed as skipped, xpassed as passed.
parse_pytest() {
  strip_ansi "$1" | awk '
    / in [0-9.]+s( \([0-9:]+\))?( =+)?[[:space:]]*$/ &&
      /(passed|failed|error|errors|skipped|xfailed|xpassed|deselected|no tests ran)/ { line = $0 }
    END {
      p = 0; f = 0; s = 0
      n = split(line, w, /[ ,=]+/)
      for (i = 2; i <= n; i++) {
        if (w[i - 1] !~ /^[0-9]+$/) continue
        c = w[i - 1] + 0
        if (w[i] == "passed" || w[i] == "xpassed") p += c
        else if (w[i] == "failed" || w[i] == "error" || w[i] == "errors") f += c
        else if (w[i] == "skipped" || w[i] == "xfailed") s += c
      }
      printf "%d %d %d\n", p, f, s
    }'
}

# parse_shell_tests FILE: this repo's shell test runners print
# "shell-tests: N passed, M failed" as their last summary.
parse_shell_tests() {
  strip_ansi "$1" | awk '
    /^shell-tests: [0-9]+ passed, [0-9]+ failed/ { p = $2; f = $4 }
    END { printf "%d %d 0\n", p, f }'
}

# settle_counts EXIT_STATUS PASSED FAILED SKIPPED: the layer's final counts.
# A layer that ran no test (nothing passed or failed; only skips count as none
# run), or exited non-zero with no failure counted (a crash, a compile error),
# gets one failure so it can never pass silently.
settle_counts() {
  local status="$1" passed="$2" failed="$3" skipped="$4"
  if ((passed + failed == 0)); then
    failed=$((failed + 1))
  elif ((status != 0 && failed == 0)); then
    failed=1
  fi
  printf '%d %d %d\n' "${passed}" "${failed}" "${skipped}"
}
