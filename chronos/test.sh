#!/usr/bin/env bash
# Builds Chronos twice (release, ASan+UBSan) and runs the Catch2 suite of each through ctest.
#   bash chronos/test.sh            both builds
#   bash chronos/test.sh release    one of them (release | asan)
# Prints ctest's summary line ("100% tests passed, 0 tests failed out of N") for each and exits
# non-zero if either fails.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
modes=("$@")
[[ ${#modes[@]} -eq 0 ]] && modes=(release asan)
status=0

for mode in "${modes[@]}"; do
  dir="$here/build"
  [[ "$mode" == "asan" ]] && dir="$here/build-asan"
  if ! bash "$here/build.sh" "$mode"; then
    echo "chronos: $mode build failed" >&2
    status=1
    continue
  fi
  echo "chronos: running the Catch2 suite ($mode)"
  if [[ "$mode" == "asan" ]]; then
    # Leak detection stays on: with PoCL's ICD the suite runs clean. Where LeakSanitizer cannot
    # run at all (some seccomp profiles forbid what it needs), pass ASAN_OPTIONS=detect_leaks=0;
    # options given by the caller come last and win. UBSan findings are fatal
    # (-fno-sanitize-recover=all at build time, halt_on_error here).
    ASAN_OPTIONS="abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
      ctest --test-dir "$dir" --output-on-failure || status=1
  else
    ctest --test-dir "$dir" --output-on-failure || status=1
  fi
done
exit $status
