#!/usr/bin/env bash
# Prepares, on the development machine, what the issue-13 end-to-end run carries to the GPU
# machine (which has no network, no Docker and no Deno). Idempotent: an archive is remade only
# when what goes into it changed.
#
#   bash scripts/gpu/prepare.sh
#
# Writes into .device/gpu/ (git-ignored):
#   debs/                    every .deb it downloads (a cache, not carried)
#   carry/debs/              the small .debs the GPU machine unpacks with dpkg -x: OpenCL ICD loader,
#                            its headers, clinfo, nlohmann/json (the OCI runtime wrapper's JSON
#                            header) and Catch2 (only for a build with tests)
#   carry/dk.tar.xz          Docker from Debian: bin/{dockerd,containerd,containerd-shim-runc-v2,runc,
#                            docker,docker-proxy,docker-init} and lib/ (the shared libraries those
#                            name apart from glibc's own; setup.sh uses only those missing there)
#   carry/deno.tar.xz        bin/deno and this checkout's node_modules/ (enough for
#                            `deno run` with no registry: checked here with the registry unreachable)
#
# It prints the sizes, the working tree's size and the carry sets of the device calls
# (docs/gpu_run.md, "Issue 13 end to end"). Env: GPU_PREPARE_SKIP_OFFLINE_CHECK=1 skips the
# offline Deno check (about 10 s).
set -euo pipefail

# shellcheck source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

out="${CUMULUS_ROOT}/.device/gpu"
cache="${out}/debs"
carry="${out}/carry"
deno_bin="${CUMULUS_ROOT}/.tools/node_modules/deno/deno"
# The device tool's limit on what one call sends: working tree + carried paths.
limit=$((64 * 1024 * 1024))

docker_debs=(docker.io containerd runc tini)
small_debs=(ocl-icd-libopencl1 ocl-icd-opencl-dev opencl-c-headers clinfo nlohmann-json3-dev catch2)
# glibc's own libraries exist on every Linux; everything else ldd names is carried.
glibc_libs='^(linux-vdso|ld-linux|libc|libm|libpthread|libdl|librt|libresolv)\.so'

mkdir -p "${cache}" "${carry}/debs"

# deb_of PACKAGE: the downloaded .deb of PACKAGE in the cache (empty when none).
deb_of() {
  find "${cache}" -maxdepth 1 -name "${1}_*.deb" | sort | tail -n 1
}

step "Debian packages into ${cache#"${CUMULUS_ROOT}/"}"
missing=()
for p in "${docker_debs[@]}" "${small_debs[@]}"; do
  [[ -n "$(deb_of "${p}")" ]] || missing+=("${p}")
done
if ((${#missing[@]} > 0)); then
  info "downloading ${missing[*]}"
  if ! (cd "${cache}" && apt-get download "${missing[@]}" >/dev/null 2>&1); then
    info "apt-get download failed: running apt-get update first"
    as_root apt-get update >/dev/null
    (cd "${cache}" && apt-get download "${missing[@]}" >/dev/null)
  fi
fi
for p in "${docker_debs[@]}" "${small_debs[@]}"; do
  [[ -n "$(deb_of "${p}")" ]] || die "apt-get download ${p}: no .deb in ${cache}"
  info "$(basename "$(deb_of "${p}")")"
done
rm -f "${carry}"/debs/*.deb
for p in "${small_debs[@]}"; do cp "$(deb_of "${p}")" "${carry}/debs/"; done

# stamp_matches FILE TEXT: true when FILE.stamp holds TEXT and FILE exists (inputs unchanged).
stamp_matches() {
  [[ -f "$1" && -f "$1.stamp" && "$(cat "$1.stamp")" == "$2" ]]
}

# xz_big: xz with a dictionary large enough to find the code the Go binaries share (dockerd,
# containerd, docker and the shim have much of Go's runtime and moby's packages in common):
# 33 MB instead of 47 MB with xz's default dictionary.
xz_big() {
  xz -T1 --lzma2=preset=9e,dict=192MiB
}

dk_inputs="$(for p in "${docker_debs[@]}"; do basename "$(deb_of "${p}")"; done; echo v2)"
deno_inputs="$(
  stat -c '%s %Y' "${deno_bin}"
  sha256sum "${CUMULUS_ROOT}/deno.lock" "${CUMULUS_ROOT}/deno.json" | cut -c1-64
  find "${CUMULUS_ROOT}/node_modules" -maxdepth 2 | LC_ALL=C sort | sha256sum | cut -c1-64
  echo v1
)"

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
pids=()

if stamp_matches "${carry}/dk.tar.xz" "${dk_inputs}"; then
  step "dk.tar.xz is up to date"
else
  step "dk.tar.xz: Docker binaries and the libraries they need (xz -9e, about 2.5 min)"
  mkdir -p "${work}/x" "${work}/dk/bin" "${work}/dk/lib"
  for p in "${docker_debs[@]}"; do dpkg -x "$(deb_of "${p}")" "${work}/x"; done
  for b in usr/sbin/dockerd usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/sbin/runc \
    usr/bin/docker usr/sbin/docker-proxy; do
    [[ -f "${work}/x/${b}" ]] || die "${b} is not in the Docker packages"
    cp "${work}/x/${b}" "${work}/dk/bin/"
  done
  cp "${work}/x/usr/bin/tini-static" "${work}/dk/bin/docker-init"
  # The shared libraries of every binary (resolved on this Debian machine, whose versions the
  # binaries were built against), minus glibc's.
  for b in "${work}"/dk/bin/*; do
    ldd "${b}" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' || true
  done | sort -u | while read -r name path; do
    [[ ${name} =~ ${glibc_libs} ]] && continue
    cp -L "${path}" "${work}/dk/lib/${name}"
  done
  info "bin: $(cd "${work}/dk/bin" && echo *)"
  info "lib: $(cd "${work}/dk/lib" && echo *)"
  (
    tar -C "${work}/dk" -cf - bin lib | xz_big >"${work}/dk.tar.xz"
    mv "${work}/dk.tar.xz" "${carry}/dk.tar.xz"
    printf '%s' "${dk_inputs}" >"${carry}/dk.tar.xz.stamp"
  ) &
  pids+=($!)
fi

if stamp_matches "${carry}/deno.tar.xz" "${deno_inputs}"; then
  step "deno.tar.xz is up to date"
else
  step "deno.tar.xz: the Deno binary and node_modules/ (xz -9e, about 1 min)"
  [[ -x "${deno_bin}" ]] || die "${deno_bin} is missing: run scripts/bootstrap.sh"
  [[ -d "${CUMULUS_ROOT}/node_modules" ]] || die "node_modules/ is missing: run scripts/bootstrap.sh"
  mkdir -p "${work}/deno/bin"
  cp "${deno_bin}" "${work}/deno/bin/deno"
  (
    # One archive holding both: bin/deno and node_modules/.
    tar -C "${work}/deno" -cf "${work}/deno.tar" bin
    tar -C "${CUMULUS_ROOT}" -rf "${work}/deno.tar" node_modules
    xz_big <"${work}/deno.tar" >"${work}/deno.tar.xz"
    mv "${work}/deno.tar.xz" "${carry}/deno.tar.xz"
    printf '%s' "${deno_inputs}" >"${carry}/deno.tar.xz.stamp"
  ) &
  pids+=($!)
fi
for pid in "${pids[@]}"; do wait "${pid}" || die "making an archive failed"; done

if [[ ${GPU_PREPARE_SKIP_OFFLINE_CHECK:-0} != 1 ]]; then
  step "offline check: deno.tar.xz runs the CLI and the agent with no registry and an empty DENO_DIR"
  mkdir -p "${work}/check/repo" "${work}/check/home"
  # What the device tool sends: tracked files and untracked ones git does not ignore.
  (cd "${CUMULUS_ROOT}" && { git ls-files -z && git ls-files -z --others --exclude-standard; } |
    xargs -0 tar -cf - 2>/dev/null) | tar -C "${work}/check/repo" -xf -
  tar -C "${work}/check/repo" -xJf "${carry}/deno.tar.xz"
  for args in "main.ts version" "main.ts orchestrator --help" "src/agent/main.ts --help"; do
    # shellcheck disable=SC2086 # args is a word list on purpose
    if ! (cd "${work}/check/repo" && env -i HOME="${work}/check/home" PATH=/usr/bin:/bin \
      DENO_DIR="${work}/check/deno_dir" NPM_CONFIG_REGISTRY=http://127.0.0.1:9 \
      DENO_NO_UPDATE_CHECK=1 ./bin/deno run -A ${args} >"${work}/check/out" 2>&1); then
      tail -n 20 "${work}/check/out" >&2
      die "deno run -A ${args} failed offline (output above)"
    fi
    info "deno run -A ${args}: ok"
  done
fi

step "sizes"
tree_bytes="$(cd "${CUMULUS_ROOT}" && {
  git ls-files -z
  git ls-files -z --others --exclude-standard
} | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1)"
size() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
debs_bytes="$(du -cb "${carry}"/debs/*.deb | tail -n 1 | cut -f1)"
dk_bytes="$(size "${carry}/dk.tar.xz")"
deno_bytes="$(size "${carry}/deno.tar.xz")"
printf '    %-34s %12s  %s\n' "working tree (tracked + untracked)" "${tree_bytes}" "$(mib "${tree_bytes}")" \
  "carry/debs (${#small_debs[@]} .debs)" "${debs_bytes}" "$(mib "${debs_bytes}")" \
  "carry/dk.tar.xz" "${dk_bytes}" "$(mib "${dk_bytes}")" \
  "carry/deno.tar.xz" "${deno_bytes}" "$(mib "${deno_bytes}")"
one=$((tree_bytes + debs_bytes + dk_bytes + deno_bytes))
call1=$((tree_bytes + debs_bytes + dk_bytes))
call2=$((tree_bytes + deno_bytes))
printf '    %-34s %12s  %s (limit %s)\n' "all in one call" "${one}" "$(mib "${one}")" "$(mib "${limit}")"
if ((one < limit)); then
  info "everything fits in ONE device call: carry [\".device/gpu/carry\"]"
  info "command: bash scripts/gpu/setup.sh && bash scripts/gpu/run.sh"
else
  info "too big for one call by $(mib $((one - limit))): use two calls, the second right after the first"
  info "call 1 ($(mib "${call1}")): carry [\".device/gpu/carry/dk.tar.xz\", \".device/gpu/carry/debs\"]," \
    "command: bash scripts/gpu/setup.sh"
  info "call 2 ($(mib "${call2}")): carry [\".device/gpu/carry/deno.tar.xz\"], command: bash scripts/gpu/run.sh"
  ((call1 < limit && call2 < limit)) || die "a call is over the limit"
fi
