# shellcheck shell=bash
# Debian package installation for bootstrap.sh. Needs common.sh.

# missing_apt_packages PKG...: print the packages that are not installed.
# dpkg-query alone is fast (~50 ms), so a second bootstrap run never touches apt.
missing_apt_packages() {
  local pkg status
  for pkg in "$@"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "${pkg}" 2>/dev/null || true)"
    if [[ ${status} != "installed" ]]; then
      printf '%s\n' "${pkg}"
    fi
  done
}

# ensure_apt_packages PKG...: install whatever is missing, non-interactively.
ensure_apt_packages() {
  have dpkg-query || die "dpkg-query not found: bootstrap needs Debian (bookworm)"
  local missing
  mapfile -t missing < <(missing_apt_packages "$@")
  if [[ ${#missing[@]} -eq 0 ]]; then
    info "all $# Debian packages present (cached)"
    return 0
  fi
  info "missing: ${missing[*]}"
  # apt-get update only when something is missing: it is the slow part.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null ||
    die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" </dev/null ||
    die "apt-get install failed for: ${missing[*]}"
  mapfile -t missing < <(missing_apt_packages "$@")
  [[ ${#missing[@]} -eq 0 ]] || die "still not installed after apt-get: ${missing[*]}"
}
