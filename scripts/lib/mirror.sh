# shellcheck shell=bash
# Which Debian mirror this machine uses. No image registry is reachable here,
# so the base image is built with debootstrap from the machine's own mirror;
# the mirror host is read at run time and never written into the repository.

# debian_mirror_from_sources FILE...: first URI of a deb822 stanza whose Types
# include "deb" and whose Suites include exactly "bookworm".
debian_mirror_from_sources() {
  awk '
    function flush() {
      if (is_deb && has_suite && uri != "" && found == "") found = uri
      is_deb = 0; has_suite = 0; uri = ""
    }
    /^[[:space:]]*$/ { flush(); next }
    /^[[:space:]]*#/ { next }
    tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") is_deb = 1 }
    tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == "bookworm") has_suite = 1 }
    tolower($1) == "uris:" { uri = $2 }
    END { flush(); if (found != "") print found }
  ' "$@" 2>/dev/null
}

# debian_mirror_from_list FILE...: URI of the first one-line "deb ... bookworm" entry.
debian_mirror_from_list() {
  awk '
    $1 == "deb" {
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if ($(i + 1) == "bookworm") { print $i; exit }
    }
  ' "$@" 2>/dev/null
}

# debian_mirror: print the bookworm mirror URI (CUMULUS_DEBIAN_MIRROR overrides).
debian_mirror() {
  if [[ -n ${CUMULUS_DEBIAN_MIRROR:-} ]]; then
    printf '%s\n' "${CUMULUS_DEBIAN_MIRROR}"
    return 0
  fi
  local uri="" sources=()
  shopt -s nullglob
  sources=(/etc/apt/sources.list.d/*.sources)
  shopt -u nullglob
  if [[ ${#sources[@]} -gt 0 ]]; then
    uri="$(debian_mirror_from_sources "${sources[@]}" | head -n 1)"
  fi
  if [[ -z ${uri} ]]; then
    local lists=()
    [[ -f /etc/apt/sources.list ]] && lists+=(/etc/apt/sources.list)
    shopt -s nullglob
    lists+=(/etc/apt/sources.list.d/*.list)
    shopt -u nullglob
    if [[ ${#lists[@]} -gt 0 ]]; then
      uri="$(debian_mirror_from_list "${lists[@]}" | head -n 1)"
    fi
  fi
  [[ -n ${uri} ]] || return 1
  printf '%s\n' "${uri}"
}
