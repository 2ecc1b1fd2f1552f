# shellcheck shell=bash
# Self-extracting executables for scripts/build.sh's offline fallback (used when no denort is
# available, so `deno compile` cannot run). One file = a small POSIX sh stub followed by a gzipped
# tar of a directory that holds bin/deno, the code and node_modules. The first run unpacks the
# tar ONCE into ${CUMULUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cumulus}/<tag>/ and every
# run then execs `bin/deno run` from there. The tag is "<version>-<payload sha256 prefix>", so
# executables that carry the same payload share one unpacked copy, and a new build never reuses
# an old one. Source this file; it defines functions and runs nothing.

# The stub. @NAME@ etc. are filled in by selfextract_stub; everything else is literal sh run on
# the user's machine, which needs only sh, tail, tar, gzip, mktemp, mv (GNU: -T) and rm.
# Why each step:
# - fd 3 is opened first and the payload is read through /proc/$$/fd/3, so a rebuild that
#   renames a new file over this one while it unpacks cannot feed it the other file's bytes.
# - the payload is checked against its sha256 before unpacking (a truncated download fails
#   with a clear line instead of a half-unpacked runtime).
# - it unpacks into a fresh temporary directory beside the target and renames it into place:
#   rename(2) is atomic, so concurrent first runs either win the rename or find a complete
#   directory, and no run ever sees a half-written one.
# shellcheck disable=SC2016 # literal: it expands on the user's machine, not here
_SELFEXTRACT_STUB='#!/bin/sh
exec 3<"$0" || exit 1
# @NAME@ @VERSION@ (commit @COMMIT@): a self-contained Cumulus executable made by
# scripts/build.sh (offline fallback, see docs/build.md). After this script comes a gzipped tar
# with the Deno runtime, the code, node_modules and libchronos.so. The first run unpacks it once
# into a versioned cache directory; later runs start from there. Environment:
#   CUMULUS_CACHE_DIR   where to unpack (default ${XDG_CACHE_HOME:-$HOME/.cache}/cumulus)
set -eu
name="@NAME@"
tag="@TAG@"
sum="@SHA256@"
skip=@SKIP@

die() {
  printf "%s: %s\n" "$name" "$*" >&2
  exit 1
}

payload="/proc/$$/fd/3"
[ -r "$payload" ] || payload="$0"
if [ -n "${CUMULUS_CACHE_DIR:-}" ]; then
  root="$CUMULUS_CACHE_DIR"
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
  root="$XDG_CACHE_HOME/cumulus"
elif [ -n "${HOME:-}" ]; then
  root="$HOME/.cache/cumulus"
else
  root="${TMPDIR:-/tmp}/cumulus-cache-$(id -u)"
fi
dir="$root/$tag"

interrupted() {
  rm -rf "$tmp"
  exit 130
}

unpack() {
  mkdir -p "$root" || die "cannot create $root (set CUMULUS_CACHE_DIR)"
  # Code is run from here: refuse a directory that someone else could have planted.
  [ -O "$root" ] || die "$root is not owned by you (set CUMULUS_CACHE_DIR)"
  if command -v sha256sum >/dev/null 2>&1; then
    got="$(tail -c +"$skip" "$payload" | sha256sum)"
    got="${got%% *}"
    [ "$got" = "$sum" ] || die "damaged executable $0: payload sha256 $got, expected $sum"
  fi
  tmp="$(mktemp -d "$root/.unpack-XXXXXX")" || die "cannot create a directory in $root"
  # Interrupted mid-way: leave no half-unpacked directory behind.
  trap interrupted INT TERM HUP
  [ -t 2 ] && printf "%s: first run: unpacking into %s\n" "$name" "$dir" >&2
  if ! tail -c +"$skip" "$payload" | tar -xzf - -C "$tmp"; then
    rm -rf "$tmp"
    die "could not unpack into $root"
  fi
  : >"$tmp/.complete"
  if mv -T "$tmp" "$dir" 2>/dev/null; then return 0; fi
  # Lost the race to a concurrent first run (its copy is complete), or a damaged copy is in
  # the way: move that aside, then try once more.
  if [ -f "$dir/.complete" ]; then
    rm -rf "$tmp"
    return 0
  fi
  old="$(mktemp -d "$root/.stale-XXXXXX")"
  mv -T "$dir" "$old/copy" 2>/dev/null || true
  rm -rf "$old"
  mv -T "$tmp" "$dir" 2>/dev/null || [ -f "$dir/.complete" ] || die "could not install $dir"
  rm -rf "$tmp"
}

[ -f "$dir/.complete" ] || unpack
trap - INT TERM HUP
exec 3<&-
# What client commands may read besides the current directory: the config dir (the
# credentials file, up.json and the CA copy `cumulus up` leaves there) and the files the
# environment names. A path with a space or a comma is left out (Deno lists are comma-split).
client_read="."
add_read() {
  case "$1" in "" | *" "* | *,*) ;; *) client_read="$client_read,$1" ;; esac
}
add_read "${CUMULUS_CONFIG_DIR:-}"
if [ -n "${XDG_CONFIG_HOME:-}" ]; then
  add_read "$XDG_CONFIG_HOME/cumulus"
elif [ -n "${HOME:-}" ]; then
  add_read "$HOME/.config/cumulus"
fi
add_read "${CUMULUS_CREDENTIALS:-}"
add_read "${CUMULUS_CA_FILE:-}"
# The command: the first argument that is not a global flag (--url takes a value).
cmd=""
want=""
for a in "$@"; do
  if [ -n "$want" ]; then want=""; continue; fi
  case "$a" in
    --url) want=1 ;;
    -*) ;;
    *) cmd="$a"; break ;;
  esac
done
perms="@PERMISSIONS@"
case "$cmd" in
@CASES@
esac
# The daemons `cumulus up` starts are this same file with other first arguments.
self="$0"
case "$self" in /*) ;; *) self="$(pwd)/$self" ;; esac
CUMULUS_SELF="$self"
DENO_DIR="$dir/deno_dir"
DENO_NO_UPDATE_CHECK=1
export CUMULUS_SELF DENO_DIR DENO_NO_UPDATE_CHECK
# shellcheck disable=SC2086 # $perms is a word list with no spaces inside words
exec "$dir/bin/deno" run --quiet --cached-only --no-remote --no-prompt \
  --config "$dir/app/deno.json" $perms "$dir/app/@ENTRY@" @ARGS@ "$@"
'

# _selfextract_word_ok WORD: true when WORD is safe to paste into the stub unquoted (the
# values come from build.sh, never from users; this keeps a typo from becoming sh syntax).
_selfextract_word_ok() {
  [[ $1 =~ ^[A-Za-z0-9_.,:=/+-]+$ ]]
}

# selfextract_stub NAME VERSION COMMIT TAG SHA256 SKIP ENTRY ARGS PERMISSIONS [CASES]: prints the
# stub. ARGS and PERMISSIONS are space-separated words (ARGS may be empty). The permission word
# CLIENT_READ stands for the run-time list of what client commands may read (`.` and the config
# dir). CASES: lines "CMD1|CMD2 PERMISSION...", the permissions of those commands (the first
# argument that is not a global flag) instead of PERMISSIONS.
selfextract_stub() {
  local name="$1" version="$2" commit="$3" tag="$4" sha="$5" skip="$6" entry="$7"
  local args="$8" perms="$9" cases="${10:-}" w line names rest rendered=""
  for w in "${name}" "${version}" "${commit}" "${tag}" "${sha}" "${skip}" "${entry}" ${args} \
    ${perms}; do
    _selfextract_word_ok "${w}" || {
      printf 'error: selfextract_stub: unsafe word %q\n' "${w}" >&2
      return 1
    }
  done
  while IFS= read -r line; do
    [[ -n ${line} ]] || continue
    names="${line%% *}"
    rest="${line#* }"
    [[ ${names} =~ ^[a-z0-9-]+(\|[a-z0-9-]+)*$ ]] || {
      printf 'error: selfextract_stub: bad command pattern %q\n' "${names}" >&2
      return 1
    }
    for w in ${rest}; do
      _selfextract_word_ok "${w}" || {
        printf 'error: selfextract_stub: unsafe word %q\n' "${w}" >&2
        return 1
      }
    done
    rendered+="  ${names}) perms=\"${rest//CLIENT_READ/\$\{client_read\}}\" ;;"$'\n'
  done <<<"${cases}"
  local s="${_SELFEXTRACT_STUB}"
  s="${s//@NAME@/${name}}"
  s="${s//@VERSION@/${version}}"
  s="${s//@COMMIT@/${commit}}"
  s="${s//@TAG@/${tag}}"
  s="${s//@SHA256@/${sha}}"
  # Padded with spaces to a fixed width, so the stub's length does not depend on the offset
  # (spaces, not leading zeros, which sh arithmetic would read as octal).
  [[ ${skip} =~ ^[0-9]{1,12}$ ]] || { printf 'error: selfextract_stub: bad offset\n' >&2; return 1; }
  s="${s//@SKIP@/$(printf '%-12s' "${skip}")}"
  s="${s//@ENTRY@/${entry}}"
  s="${s//@ARGS@/${args}}"
  s="${s//@PERMISSIONS@/${perms//CLIENT_READ/\$\{client_read\}}}"
  s="${s//@CASES@/${rendered%$'\n'}}"
  printf '%s' "${s}"
}

# selfextract_write OUT PAYLOAD NAME VERSION COMMIT ENTRY ARGS PERMISSIONS [CASES]: writes OUT as
# the stub followed by PAYLOAD (a .tar.gz of the directory to unpack) and makes it executable.
selfextract_write() {
  local out="$1" payload="$2" name="$3" version="$4" commit="$5" entry="$6" args="$7" perms="$8"
  local cases="${9:-}"
  # ${#stub} must count bytes, not characters.
  local LC_ALL=C sha tag stub skip
  sha="$(sha256sum "${payload}")"
  sha="${sha%% *}"
  tag="${version}-${sha:0:16}"
  # Render once to measure, then again with the real offset (the same length: see @SKIP@).
  stub="$(selfextract_stub "${name}" "${version}" "${commit}" "${tag}" "${sha}" 1 \
    "${entry}" "${args}" "${perms}" "${cases}")" || return 1
  skip=$((${#stub} + 2))
  stub="$(selfextract_stub "${name}" "${version}" "${commit}" "${tag}" "${sha}" "${skip}" \
    "${entry}" "${args}" "${perms}" "${cases}")" || return 1
  ((${#stub} + 2 == skip)) || { printf 'error: selfextract_write: stub length changed\n' >&2; return 1; }
  { printf '%s\n' "${stub}" && cat "${payload}"; } >"${out}" || return 1
  chmod 0755 "${out}"
}

# selfextract_tag PAYLOAD VERSION: the cache directory name executables of PAYLOAD use.
selfextract_tag() {
  local sha
  sha="$(sha256sum "$1")"
  printf '%s-%s\n' "$2" "${sha:0:16}"
}
