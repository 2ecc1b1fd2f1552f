#!/usr/bin/env bash
# Run every test of the project and print one summary line. This is the
# README's test command; .ci/run calls it. It bootstraps the machine first
# (idempotent, ~1 s when nothing is missing), then runs each layer with its
# output on the terminal, and sums the counts. The last line is exactly
# "N passed, N failed, N skipped"; the exit status is non-zero on any failure.
# A layer that runs no test, or exits non-zero without a counted failure,
# counts as one failure.
#
# Usage: bash scripts/test.sh [--no-bootstrap] [LAYER...]
#   LAYER: shell | chronos | deno | pytest   (default: all of them)
#   --no-bootstrap (or CUMULUS_SKIP_BOOTSTRAP=1): use the existing .cumulus/env.
# Logs: .cumulus/test-logs/<layer>.log
set -uo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/test_summary.sh
source "${CUMULUS_ROOT}/scripts/lib/test_summary.sh"
# shellcheck source=lib/deno_groups.sh
source "${CUMULUS_ROOT}/scripts/lib/deno_groups.sh"

ALL_LAYERS=(shell chronos deno pytest)
PYTHON=/usr/bin/python3

usage() {
  # The header comment is the help text.
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

bootstrap=1
[[ ${CUMULUS_SKIP_BOOTSTRAP:-} == 1 ]] && bootstrap=0
layers=()
for arg in "$@"; do
  case "${arg}" in
    --no-bootstrap) bootstrap=0 ;;
    -h | --help) usage; exit 0 ;;
    shell | chronos | deno | pytest) layers+=("${arg}") ;;
    *) usage >&2; die "unknown argument: ${arg}" ;;
  esac
done
explicit=${#layers[@]}
[[ ${explicit} -gt 0 ]] || layers=("${ALL_LAYERS[@]}")

cd "${CUMULUS_ROOT}" || die "cannot cd to ${CUMULUS_ROOT}"
started=${SECONDS}
total_passed=0
total_failed=0
total_skipped=0
summary_lines=()

# print_total: the final line, in exactly the documented form.
print_total() {
  printf '%d passed, %d failed, %d skipped\n' "${total_passed}" "${total_failed}" "${total_skipped}"
}

if [[ ${bootstrap} -eq 1 ]]; then
  step "bootstrap"
  if ! bash "${CUMULUS_ROOT}/scripts/bootstrap.sh" </dev/null; then
    printf 'error: scripts/bootstrap.sh failed: no test can run\n' >&2
    total_failed=1
    print_total
    exit 1
  fi
fi
[[ -f ${CUMULUS_ROOT}/.cumulus/env ]] || die ".cumulus/env missing: run scripts/bootstrap.sh"
# shellcheck source=/dev/null
source "${CUMULUS_ROOT}/.cumulus/env"

log_dir="${CUMULUS_ROOT}/.cumulus/test-logs"
mkdir -p "${log_dir}"

# run_layer NAME PARSER CMD ARGS...: run one layer, tee its output to the
# terminal and its log, parse the counts and add them to the totals.
run_layer() {
  local name="$1" parser="$2"
  shift 2
  local log="${log_dir}/${name}.log" layer_started=${SECONDS} status counts
  step "layer ${name}: $*"
  "$@" </dev/null 2>&1 | tee "${log}"
  status=${PIPESTATUS[0]}
  read -r p f s < <(settle_counts "${status}" $("${parser}" "${log}"))
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
  total_skipped=$((total_skipped + s))
  counts="$(printf '%-8s %d passed, %d failed, %d skipped (exit %d, %d s)' \
    "${name}" "${p}" "${f}" "${s}" "${status}" $((SECONDS - layer_started)))"
  summary_lines+=("${counts}")
  step "${counts}"
}

# run_shell_tests: every *_test.sh beside the shell helpers, as one layer.
run_shell_tests() {
  local t status=0
  for t in "${CUMULUS_ROOT}"/scripts/lib/*_test.sh; do
    [[ -e ${t} ]] || continue
    printf '# %s\n' "${t#"${CUMULUS_ROOT}"/}"
    bash "${t}" || status=1
  done
  return "${status}"
}

# shell_tests_total FILE: sum of the per-file "shell-tests:" lines.
shell_tests_total() {
  strip_ansi "$1" | awk '
    /^shell-tests: [0-9]+ passed, [0-9]+ failed/ { p += $2; f += $4 }
    END { printf "%d %d 0\n", p, f }'
}

for layer in "${layers[@]}"; do
  case "${layer}" in
    shell)
      run_layer shell shell_tests_total run_shell_tests
      ;;
    chronos)
      if [[ -f chronos/test.sh ]]; then
        run_layer chronos parse_ctest bash chronos/test.sh
      elif [[ ${explicit} -gt 0 ]]; then
        warn "chronos/test.sh not found"
        total_failed=$((total_failed + 1))
        summary_lines+=("chronos  missing chronos/test.sh: 1 failed")
      else
        step "layer chronos: skipped (no chronos/test.sh yet)"
      fi
      ;;
    deno)
      run_layer deno deno_groups_total run_deno_groups "${log_dir}" \
        "${CUMULUS_DENO_GROUP_SIZE:-8}" deno test -A --no-check=remote
      ;;
    pytest)
      run_layer pytest parse_pytest env PYTHONDONTWRITEBYTECODE=1 \
        "${PYTHON}" -m pytest src/sdk/python/tests -q -p no:cacheprovider
      ;;
  esac
done

step "summary ($((SECONDS - started)) s)"
for line in "${summary_lines[@]}"; do
  info "${line}"
done
print_total
[[ ${total_failed} -eq 0 ]]
