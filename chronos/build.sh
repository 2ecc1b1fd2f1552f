#!/usr/bin/env bash
# Builds Chronos with CMake. Idempotent: re-running with nothing changed only re-checks.
#   bash chronos/build.sh release   -> chronos/build      (RelWithDebInfo)
#   bash chronos/build.sh asan      -> chronos/build-asan (ASan + UBSan)
# Extra CMake cache settings can be passed after the mode, e.g. -DCHRONOS_HAMMER_SECONDS=5.
set -euo pipefail

mode="${1:-release}"
shift || true
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
jobs="${CHRONOS_BUILD_JOBS:-2}"

case "$mode" in
  release) dir="$here/build"; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHRONOS_SANITIZE=OFF) ;;
  asan) dir="$here/build-asan"; flags=(-DCMAKE_BUILD_TYPE=Debug -DCHRONOS_SANITIZE=ON) ;;
  *) echo "chronos/build.sh: unknown mode '$mode' (expected release or asan)" >&2; exit 2 ;;
esac

echo "chronos: configuring $mode build in $dir"
# Configure only when the cache is missing or settings were passed; the build step re-runs
# CMake by itself whenever a CMakeLists.txt changes.
if [[ ! -f "$dir/CMakeCache.txt" || $# -gt 0 ]]; then
  mkdir -p "$dir"
  cmake -S "$here" -B "$dir" "${flags[@]}" "$@" >"$dir/configure.log" 2>&1 || {
    cat "$dir/configure.log" >&2
    echo "chronos: cmake configure failed" >&2
    exit 1
  }
fi
echo "chronos: building ($jobs jobs)"
cmake --build "$dir" -j "$jobs"
echo "chronos: $mode build ready: $dir/libchronos.so $dir/chronos_cli"
