#!/usr/bin/env bash
# Build a Cumulus job image on a GPU host that reaches no image registry, from
# what the host itself has: its system directories, the Python environment
# that has PyTorch, and the `cumulus` package from this checkout, streamed as
# one tar into `docker import`. On the H100 test machine (Ubuntu 24.04,
# /opt/torch/.venv with Python 3.12 and PyTorch 2.11) it took 56 s and made a
# 9.7 GB image that ran CUDA PyTorch with the GPU handed in (docs/gpu-images.md).
# Hosts with a registry use containers/job-gpu/Dockerfile instead.
#
# The image holds no GPU driver: on a worker the Cumulus runtime wrapper hands a
# job its partitions' device nodes and bind-mounts the driver's libraries.
#
# Usage: containers/job-gpu/build-from-host.sh --python-env DIR [options]
#   --python-env DIR  the Python environment with torch, grpc and cloudpickle
#                     (e.g. /opt/torch/.venv); it goes into the image at the
#                     same path and its bin/ first on PATH (required)
#   --tag NAME        image tag (default cumulus-job-gpu:latest)
#   --docker PATH     docker CLI to use (default: docker on PATH)
#   --roots "A B ..." host directories to copy, relative to / (globs allowed;
#                     missing ones are skipped with a note). Default:
#                     "usr/bin usr/sbin usr/lib usr/lib64 usr/share/ca-certificates etc bin lib lib64 sbin"
#                     (usr/sbin because sbin is a link to it on merged-/usr hosts)
#   --require "M ..." Python modules the environment must import
#                     (default "torch grpc cloudpickle google.protobuf")
#   --init PATH       tini (or docker-init) binary to run as PID 1; default: the
#                     host's tini-static, tini or docker-init if found
#   --progress-every MIB
#                     a progress line per this many MiB streamed (default 512)
#   --no-verify       skip the final `docker run` that imports the modules
# Env:   DOCKER_HOST as for docker.
#
# Left out of the image: documentation, man pages, locales, caches, and the
# host's secrets under etc (shadow files, SSH host keys, TLS private keys).
set -euo pipefail

# shellcheck source=../../scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"

python_env=""
tag="cumulus-job-gpu:latest"
docker_bin="docker"
roots="usr/bin usr/sbin usr/lib usr/lib64 usr/share/ca-certificates etc bin lib lib64 sbin"
require="torch grpc cloudpickle google.protobuf"
init=""
verify=1
progress_mib=512

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

value() { # value FLAG VALUE: VALUE, or die when it is missing
  [[ $# -ge 2 && -n $2 ]] || die "$1: expected a value"
  printf '%s' "$2"
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --python-env) python_env="$(value "$1" "${2:-}")"; shift 2 ;;
    --python-env=*) python_env="${1#*=}"; shift ;;
    --tag) tag="$(value "$1" "${2:-}")"; shift 2 ;;
    --tag=*) tag="${1#*=}"; shift ;;
    --docker) docker_bin="$(value "$1" "${2:-}")"; shift 2 ;;
    --docker=*) docker_bin="${1#*=}"; shift ;;
    --roots) roots="$(value "$1" "${2:-}")"; shift 2 ;;
    --roots=*) roots="${1#*=}"; shift ;;
    --require) require="${2-}"; [[ $# -ge 2 ]] || die "--require: expected a value"; shift 2 ;;
    --require=*) require="${1#*=}"; shift ;;
    --init) init="$(value "$1" "${2:-}")"; shift 2 ;;
    --init=*) init="${1#*=}"; shift ;;
    --progress-every) progress_mib="$(value "$1" "${2:-}")"; shift 2 ;;
    --progress-every=*) progress_mib="${1#*=}"; shift ;;
    --no-verify) verify=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done

started="${EPOCHREALTIME:-$(date +%s.%N)}"
# say MESSAGE: a progress line with the seconds since the start.
say() {
  local now="${EPOCHREALTIME:-$(date +%s.%N)}"
  awk -v a="${started}" -v b="${now}" -v m="$*" 'BEGIN { printf "[%6.1f s] %s\n", b - a, m }'
}

[[ -n ${python_env} ]] || die "--python-env: required, the Python environment that has torch (e.g. /opt/torch/.venv)"
[[ ${python_env} == /* ]] || die "--python-env: must be an absolute path, got ${python_env}"
python_env="${python_env%/}"
python="${python_env}/bin/python3"
[[ -x ${python} ]] || die "--python-env: no executable bin/python3 in ${python_env}"
[[ ${tag} =~ ^[a-z0-9][a-z0-9._/:-]*$ ]] || die "--tag: not an image reference, got ${tag}"
[[ ${progress_mib} =~ ^[1-9][0-9]{0,6}$ ]] || die "--progress-every: expected a whole number of MiB, got ${progress_mib}"
[[ ${require} =~ ^[A-Za-z0-9_.\ ]*$ ]] || die "--require: expected module names separated by spaces, got ${require}"
command -v "${docker_bin}" >/dev/null 2>&1 || die "--docker: ${docker_bin} not found"
tar --version 2>/dev/null | head -n 1 | grep -q 'GNU tar' || die "GNU tar is needed (for --checkpoint progress)"
package="${CUMULUS_ROOT}/src/sdk/python/cumulus"
[[ -f ${package}/runtime.py ]] || die "the cumulus package is not at ${package}"

say "checking ${python_env} (${python})"
missing=()
for module in ${require}; do
  "${python}" -c "import ${module}" >/dev/null 2>&1 </dev/null || missing+=("${module}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  die "${python_env} cannot import: ${missing[*]} (install them into that environment, e.g. ${python} -m pip install grpcio cloudpickle 'protobuf>=4.21,<5')"
fi
if ! err="$(PYTHONPATH="${package%/cumulus}" "${python}" -c 'import cumulus.runtime, cumulus._proto.cumulus_pb2' 2>&1 </dev/null)"; then
  die "the cumulus package does not import with ${python}: $(printf '%s' "${err}" | tail -n 1)"
fi
version="$("${python}" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' </dev/null)"
say "Python ${version} imports ${require:-nothing extra} and cumulus.runtime"

if ! "${docker_bin}" version --format '{{.Server.Version}}' >/dev/null 2>&1 </dev/null; then
  die "the Docker engine does not answer (${docker_bin} version failed; is dockerd running, DOCKER_HOST set?)"
fi

# The host paths to copy: each root's matches (globs), then the environment
# unless a root already holds it.
members=()
shopt -s nullglob
for pattern in ${roots}; do
  [[ ${pattern} != /* && ${pattern} != *..* ]] || die "--roots: entries are relative to / without '..', got ${pattern}"
  matches=(/${pattern})
  if [[ ${#matches[@]} -eq 0 ]]; then
    say "skipping ${pattern}: not on this host"
    continue
  fi
  for match in "${matches[@]}"; do members+=("${match#/}"); done
done
shopt -u nullglob
members+=("${python_env#/}")
# A venv's bin/python3 is a link to the host's interpreter, often through more
# links (/usr/bin/python3 -> python3.12): every hop comes along.
hop="${python}"
while [[ -L ${hop} ]]; do
  target="$(readlink "${hop}")"
  [[ ${target} == /* ]] || target="$(dirname "${hop}")/${target}"
  [[ -e ${target} ]] || die "--python-env: ${python} leads to ${target}, which does not exist"
  hop="$(cd -P "$(dirname "${target}")" && pwd -P)/$(basename "${target}")"
  members+=("${hop#/}")
done
# Each path once: a path inside a directory that is already a member would go
# into the tar twice, the second time as a hard link to itself, which docker
# import refuses. (A link to a directory, such as bin -> usr/bin, holds nothing.)
mapfile -t sorted < <(printf '%s\n' "${members[@]}" | LC_ALL=C sort -u)
members=()
for member in "${sorted[@]}"; do
  inside=0
  for kept in ${members[@]+"${members[@]}"}; do
    if [[ ${member} == "${kept}/"* && -d /${kept} && ! -L /${kept} ]]; then inside=1; break; fi
  done
  [[ ${inside} -eq 1 ]] || members+=("${member}")
done

# What Cumulus adds: the package (compiled for this Python), the job's working
# and checkpoint directories owned by uid 1000, and tini.
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
stage="${work}/stage"
mkdir -p "${stage}/opt/cumulus/python" "${stage}/opt/cumulus/bin" "${stage}/workspace" \
  "${stage}/cumulus/checkpoints" "${stage}/home/cumulus"
tar -C "${package%/cumulus}" --exclude=__pycache__ --exclude='*.pyc' -cf - cumulus | tar -C "${stage}/opt/cumulus/python" -xf -
"${python}" -m compileall -q "${stage}/opt/cumulus/python" </dev/null >/dev/null ||
  warn "compileall failed: the package is imported from source"
if [[ -z ${init} ]]; then
  for candidate in /usr/bin/tini-static /usr/bin/tini /usr/sbin/docker-init /usr/bin/docker-init /usr/libexec/docker/docker-init; do
    if [[ -x ${candidate} ]]; then init="${candidate}"; break; fi
  done
fi
entrypoint=()
if [[ -n ${init} ]]; then
  [[ -x ${init} ]] || die "--init: ${init} is not an executable"
  cp "${init}" "${stage}/opt/cumulus/bin/tini"
  entrypoint=(-c 'ENTRYPOINT ["/opt/cumulus/bin/tini", "-g", "--"]')
else
  warn "no tini found (--init PATH): python3 runs as PID 1, so docker stop waits out the grace period instead of sending SIGTERM on"
fi
for dir in workspace cumulus cumulus/checkpoints home/cumulus; do
  if [[ ${EUID} -eq 0 ]]; then
    chown 1000:1000 "${stage}/${dir}"
    chmod 0755 "${stage}/${dir}"
  else
    chmod 1777 "${stage}/${dir}" # not root: cannot hand them to uid 1000, so open them up
  fi
done

say "streaming ${#members[@]} host paths + the cumulus package into docker import ${tag}"
# tar prints a checkpoint line every progress_mib MiB (records of 10 KiB): shown as progress.
progress() {
  local line rest
  while IFS= read -r line; do
    case "${line}" in
      "tar: "[0-9]*" ("*")")
        rest="${line#*(}" # "tar: 536862720 (512MiB, 1.2GiB/s)"
        rest="${rest%)}"
        say "streamed ${rest%%,*} (${rest#*, })"
        ;;
      *) printf '%s\n' "${line}" >>"${work}/tar.warnings" ;;
    esac
  done
}
excludes=(
  --exclude=usr/share/doc --exclude=usr/share/man --exclude=usr/share/info --exclude=usr/share/locale
  --exclude=var/cache --exclude=.cache
  --exclude='etc/shadow*' --exclude='etc/gshadow*' --exclude='etc/ssh/ssh_host_*'
  --exclude=etc/ssl/private --exclude=etc/docker/key.json
)
set +e
# fd 4: this script's stdout for the progress lines. Only tar's archive may go
# down the pipe into docker import (fd 3 inside), or the stream is corrupt.
exec 4>&1
{
  {
    tar -C / -cf - --numeric-owner "${excludes[@]}" \
      --warning=no-file-ignored --warning=no-file-changed --warning=no-file-removed \
      --checkpoint=$((progress_mib * 1024 / 10)) --checkpoint-action='echo=%{}T' \
      "${members[@]}" -C "${stage}" opt/cumulus workspace cumulus home 2>&1 1>&3 3>&- 4>&-
    echo "$?" >"${work}/tar.rc"
  } | progress 3>&- >&4
} 3>&1 | "${docker_bin}" import \
  -c "ENV PATH=${python_env}/bin:/usr/local/nvidia/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  -c 'ENV PYTHONPATH=/opt/cumulus/python' \
  -c 'ENV PYTHONUNBUFFERED=1' -c 'ENV LANG=C.UTF-8' \
  -c 'ENV HOME=/home/cumulus' -c 'ENV USER=cumulus' -c 'ENV LOGNAME=cumulus' \
  -c 'ENV CUMULUS_WORKDIR=/workspace' \
  -c 'WORKDIR /workspace' -c 'USER 1000:1000' \
  ${entrypoint[@]+"${entrypoint[@]}"} \
  -c 'CMD ["python3", "-m", "cumulus.runtime", "--help"]' \
  -m "cumulus job image from the host's files (containers/job-gpu/build-from-host.sh)" \
  - "${tag}" >"${work}/import.out" 2>"${work}/import.err" 4>&-
import_rc=$?
exec 4>&-
set -e
tar_rc="$(cat "${work}/tar.rc" 2>/dev/null || echo 2)"
if [[ -s ${work}/tar.warnings ]]; then
  warn "tar said ($(wc -l <"${work}/tar.warnings") lines, first 5):"
  head -n 5 "${work}/tar.warnings" >&2
fi
# docker import first: when it fails, tar dies of the broken pipe (exit 141).
if [[ ${import_rc} -ne 0 ]]; then
  die "docker import failed (exit ${import_rc}): $(tail -n 3 "${work}/import.err")"
fi
# tar exits 1 when a file changed while it was read: the image is still whole.
[[ ${tar_rc} -le 1 ]] || die "tar of the host's files failed (exit ${tar_rc})"
size="$("${docker_bin}" image inspect --format '{{.Size}}' "${tag}" </dev/null)"
say "imported ${tag}: $(awk -v b="${size}" 'BEGIN { printf "%.2f GB", b / 1e9 }')"

if [[ ${verify} -eq 1 ]]; then
  imports="import sys, os, cumulus.runtime"
  for module in ${require}; do imports+=", ${module}"; done
  check="${imports}; print('Python', sys.version.split()[0], 'uid', os.getuid(), 'in', os.getcwd())"
  if ! out="$("${docker_bin}" run --rm --network none "${tag}" python3 -c "${check}" 2>&1 </dev/null)"; then
    die "the image does not run python3 with its modules: $(printf '%s' "${out}" | tail -n 3)"
  fi
  say "verified: ${out}"
fi
say "done: run jobs with image ${tag} (client.run(..., image=\"${tag}\"), cumulus run --image ${tag})"
