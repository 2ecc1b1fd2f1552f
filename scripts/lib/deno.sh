# shellcheck shell=bash
# Deno from npm into .tools/ (JSR and deno.land are unreachable; npm is not).
# Needs common.sh.

# deno_bin: where the pinned Deno binary lives.
deno_bin() {
  printf '%s\n' "${CUMULUS_ROOT}/.tools/node_modules/deno/deno"
}

# deno_installed_version: the version of .tools' Deno, or nothing.
deno_installed_version() {
  local bin
  bin="$(deno_bin)"
  [[ -x ${bin} ]] || return 0
  "${bin}" --version 2>/dev/null | awk 'NR == 1 && $1 == "deno" { print $2 }'
}

# ensure_deno VERSION: install deno@VERSION unless that version is already there.
ensure_deno() {
  local want="$1" got
  got="$(deno_installed_version)"
  if [[ ${got} == "${want}" ]]; then
    info "deno ${got} at .tools/node_modules/deno/deno (cached)"
    return 0
  fi
  have npm || die "npm not found: install Node.js and npm first"
  info "installing deno@${want} from npm${got:+ (found ${got})}"
  # npm 11 skips the package's postinstall, but the binary ships in the tarball.
  npm install --no-save --no-audit --no-fund --prefix "${CUMULUS_ROOT}/.tools" \
    "deno@${want}" </dev/null || die "npm install deno@${want} failed"
  got="$(deno_installed_version)"
  [[ ${got} == "${want}" ]] ||
    die "deno@${want} install left version '${got:-none}' at $(deno_bin)"
}

# deno_precache: fetch the npm packages in deno.json so tests run offline.
deno_precache() {
  (cd "${CUMULUS_ROOT}" && "$(deno_bin)" install --quiet </dev/null) ||
    die "deno install (npm dependency cache) failed"
}
