#!/usr/bin/env bash
# Chronos on the real GPU machine (DESIGN.md section 6, "Real GPU"): NVIDIA OpenCL from carried
# Debian packages, a CMake build, the Catch2 suite against the NVIDIA platform, the PyTorch
# overhead benchmark (bare vs inside a partition) and, when a Deno binary was carried, the
# create+release latency benchmark. Run from the repository root on that machine:
#
#   bash chronos/bench/gpu_run.sh [CARRY_DIR]      (default .device/chronos)
#
# CARRY_DIR holds the .debs of ocl-icd-libopencl1, ocl-icd-opencl-dev, opencl-c-headers and
# clinfo (apt-get download), include/catch2/ (a copy of /usr/include/catch2) and optionally
# deno.gz. Results go to $OUT (the device tool's output folder) or /tmp/chronos-gpu-out.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
carry="$(cd "${1:-$root/.device/chronos}" && pwd)"
out="${OUT:-/tmp/chronos-gpu-out}"
build="$root/chronos/build-gpu"
ocl=/tmp/ocl
mkdir -p "$out" "$ocl"
cd "$root"
step() { echo; echo "== $*"; }
fail=0

step "OpenCL: ICD loader, headers and clinfo from $carry (unpacked under $ocl, nothing installed)"
for deb in "$carry"/*.deb; do dpkg -x "$deb" "$ocl"; done
icd=""
for cand in /usr/local/nvidia/lib64/libnvidia-opencl.so.1 /usr/local/nvidia/lib64/libnvidia-opencl.so \
  /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1; do
  [[ -e "$cand" ]] && { icd="$cand"; break; }
done
[[ -z "$icd" ]] && icd="$(find / -name 'libnvidia-opencl.so*' -not -path '/proc/*' 2>/dev/null | head -1)"
echo "NVIDIA OpenCL driver: ${icd:-not found}"
mkdir -p /etc/OpenCL/vendors
echo "$icd" >/etc/OpenCL/vendors/nvidia.icd
export LD_LIBRARY_PATH="$ocl/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$ocl/usr/bin/clinfo" -l 2>&1 | tee "$out/clinfo.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/nvidia-smi.txt"

step "CMake build ($(cmake --version | head -1), $(c++ --version | head -1))"
t0=$(date +%s)
cmake -S chronos -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DOpenCL_INCLUDE_DIR="$ocl/usr/include" \
  -DOpenCL_LIBRARY="$ocl/usr/lib/x86_64-linux-gnu/libOpenCL.so" \
  -DCHRONOS_CATCH2_INCLUDE="$carry/include" >"$out/cmake.txt" 2>&1 || { cat "$out/cmake.txt"; exit 1; }
cmake --build "$build" -j "$(nproc)" >>"$out/cmake.txt" 2>&1 || { tail -50 "$out/cmake.txt"; exit 1; }
echo "built in $(( $(date +%s) - t0 )) s"

step "Catch2 suite (ctest) against the NVIDIA OpenCL platform"
ctest --test-dir "$build" --output-on-failure 2>&1 | tee "$out/ctest.txt" || fail=1
"$build/chronos_tests" "[devices]" 2>&1 | tee "$out/devices.txt" | grep -E "device [0-9]+:|passed|failed"
"$build/chronos_cli" --state-dir /tmp/chronos-gpu-state stats --json | tee "$out/stats.json"
"$build/chronos_cli" --state-dir /tmp/chronos-gpu-state probe 0 --bytes $((1 << 30)) | tee "$out/probe.txt"

step "PyTorch overhead: bare vs inside a Chronos partition, alternating rounds"
export PYTHONUNBUFFERED=1
python3 chronos/bench/gpu_overhead.py --lib "$build/libchronos.so" --workload matmul \
  --rounds 12 --steps 400 --size 8192 --json "$out/overhead_matmul.json" 2>&1 |
  tee "$out/overhead_matmul.txt" || fail=1
python3 chronos/bench/gpu_overhead.py --lib "$build/libchronos.so" --workload train \
  --rounds 12 --steps 60 --size 8192 --json "$out/overhead_train.json" 2>&1 |
  tee "$out/overhead_train.txt" || fail=1

if [[ -f "$carry/deno.gz" ]]; then
  step "Latency benchmark: C ABI vs Deno FFI vs CLI (bench/chronos_bench.ts)"
  gunzip -c "$carry/deno.gz" >/tmp/deno && chmod +x /tmp/deno
  CHRONOS_BUILD_DIR="$build" DENO_DIR=/tmp/deno-dir /tmp/deno run -A --no-config --no-lock \
    bench/chronos_bench.ts 2>&1 | tee "$out/latency.md" || fail=1
fi

step "done (failures: $fail)"
exit $fail
