#!/usr/bin/env bash
# Tests for mirror.sh: which Debian mirror the base image is built from.
# Run: bash scripts/lib/mirror_test.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=mirror.sh
source "${here}/mirror.sh"
# shellcheck source=testing.sh
source "${here}/testing.sh"

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

# Host names here are placeholders (RFC 2606), never a real mirror.
cat >"${tmp}/debian.sources" <<'OUT'
Types: deb-src
URIs: http://src.example.org/debian
Suites: bookworm
Components: main

# a comment between stanzas
Types: deb
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main

Types: deb
# http://snapshot.example.org/archive/debian/20250520T000000Z
URIs: http://mirror.example.org/debian
Suites: bookworm bookworm-updates
Components: main
OUT
check "deb822: the deb stanza whose suites include bookworm" \
  "http://mirror.example.org/debian" "$(debian_mirror_from_sources "${tmp}/debian.sources")"

cat >"${tmp}/sources.list" <<'OUT'
# deb http://commented.example.org/debian bookworm main
deb http://security.example.org/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://list.example.org/debian bookworm main
OUT
check "one-line list: options skipped, security suite ignored" \
  "http://list.example.org/debian" "$(debian_mirror_from_list "${tmp}/sources.list")"

printf 'deb http://plain.example.org/debian bookworm main contrib\n' >"${tmp}/plain.list"
check "one-line list without options" \
  "http://plain.example.org/debian" "$(debian_mirror_from_list "${tmp}/plain.list")"

printf 'Types: deb\nURIs: http://old.example.org/debian\nSuites: bullseye\n' >"${tmp}/old.sources"
check "deb822: no bookworm stanza gives nothing" "" "$(debian_mirror_from_sources "${tmp}/old.sources")"

check "CUMULUS_DEBIAN_MIRROR overrides" "http://override.example.org/debian" \
  "$(CUMULUS_DEBIAN_MIRROR=http://override.example.org/debian debian_mirror)"

finish
