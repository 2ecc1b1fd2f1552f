#!/usr/bin/env bash
# Build the local base image (default cumulus-base:bookworm) with debootstrap
# from this machine's Debian mirror, then `docker import` it. No image
# registry is needed. Skips the build when the image exists, unless --force.
#
# Usage: containers/base/build.sh [--force]
# Env:   DOCKER_HOST, CUMULUS_BASE_IMAGE (tag), CUMULUS_DEBIAN_MIRROR (mirror
#        URI override), CUMULUS_DEBIAN_SUITE (default bookworm).
set -euo pipefail

# shellcheck source=../../scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"
# shellcheck source=../../scripts/lib/mirror.sh
source "${CUMULUS_ROOT}/scripts/lib/mirror.sh"

image="${CUMULUS_BASE_IMAGE:-cumulus-base:bookworm}"
suite="${CUMULUS_DEBIAN_SUITE:-bookworm}"
force=0
[[ ${1:-} == "--force" ]] && force=1

if [[ ${force} -eq 0 ]] && docker image inspect "${image}" >/dev/null 2>&1 </dev/null; then
  info "${image} exists (cached)"
  exit 0
fi

have debootstrap || die "debootstrap not found (Debian package debootstrap)"
mirror="$(debian_mirror)" ||
  die "no ${suite} mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; set CUMULUS_DEBIAN_MIRROR"

# /var/tmp: the rootfs is ~200 MB and /tmp may be a small tmpfs.
work="$(mktemp -d /var/tmp/cumulus-base.XXXXXX)"
cleanup() { as_root rm -rf "${work}"; }
trap cleanup EXIT

started=${SECONDS}
info "debootstrap --variant=minbase ${suite} (log: ${work}/debootstrap.log)"
# With CUMULUS_BUILD_PROGRESS=1, debootstrap's phases are shown as they start.
if ! run_logged "${work}/debootstrap.log" \
  '^I: (Retrieving (Release|Packages)|Resolving|(Unpacking|Configuring) (required|the base)|Base system)' \
  as_root debootstrap --variant=minbase "${suite}" "${work}/rootfs" "${mirror}"; then
  tail -n 20 "${work}/debootstrap.log" >&2 || true
  [[ -f ${work}/rootfs/debootstrap/debootstrap.log ]] &&
    tail -n 20 "${work}/rootfs/debootstrap/debootstrap.log" >&2
  die "debootstrap failed (output above)"
fi
# The package cache is dead weight in the image; lists are refetched by builds.
as_root rm -rf "${work}/rootfs/var/cache/apt/archives/"*.deb "${work}/rootfs/var/lib/apt/lists/"*

info "docker import -> ${image}"
as_root tar -C "${work}/rootfs" --numeric-owner -c . |
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase ${suite}" \
    - "${image}" >/dev/null ||
  die "docker import failed"
info "built ${image} in $((SECONDS - started)) s"
