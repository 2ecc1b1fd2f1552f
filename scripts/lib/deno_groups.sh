# shellcheck shell=bash
# The deno layer of scripts/test.sh as several `deno test` processes. Needs test_summary.sh.
# Tested by scripts/lib/deno_groups_test.sh.

# run_deno_groups LOG_DIR GROUP_SIZE RUNNER...: runs RUNNER (e.g. `deno test -A`) once on src/
# and once per group of GROUP_SIZE test files under tests/ (run from the repository root), each
# with its own log LOG_DIR/deno-NAME.log, so that a crash of the test runner itself loses one
# group, not the rest of the layer: Deno 2.9.6's node:http2 can kill the whole process with
# SIGSEGV or SIGABRT (denoland/deno#36788; a clean-clone run died with signal 11 in
# tests/cli_e2e_test.ts, which then passed twice alone). A group whose runner dies by a signal
# runs once more, and says so; its counts are the second run's. A group with failed tests is
# never re-run. Prints one "deno-group: NAME PASSED FAILED SKIPPED (exit N)" line per group
# (summed by deno_groups_total); returns non-zero when any group did.
run_deno_groups() {
  local log_dir="$1" size="$2"
  shift 2
  local -a tests=() names=("src") members=("src/")
  local i name glog status p f s overall=0
  mapfile -t tests < <(find tests -type f \( -name '*_test.ts' -o -name '*.test.ts' \) | sort)
  for ((i = 0; i < ${#tests[@]}; i += size)); do
    names+=("tests-$((i / size + 1))")
    members+=("${tests[*]:i:size}")
  done
  for i in "${!names[@]}"; do
    name="${names[i]}"
    glog="${log_dir}/deno-${name}.log"
    # shellcheck disable=SC2086 # members[i]: paths without spaces, one word each
    "$@" ${members[i]} </dev/null 2>&1 | tee "${glog}"
    status=${PIPESTATUS[0]}
    if ((status > 128)); then
      printf 'deno-group: %s: the test runner died by signal %d; running the group once more\n' \
        "${name}" $((status - 128))
      # shellcheck disable=SC2086
      "$@" ${members[i]} </dev/null 2>&1 | tee "${glog}"
      status=${PIPESTATUS[0]}
    fi
    read -r p f s < <(settle_counts "${status}" $(parse_deno "${glog}"))
    printf 'deno-group: %s %d %d %d (exit %d)\n' "${name}" "${p}" "${f}" "${s}" "${status}"
    ((status == 0)) || overall=1
  done
  return "${overall}"
}
