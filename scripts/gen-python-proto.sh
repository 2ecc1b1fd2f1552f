#!/usr/bin/env bash
# Generate the Python protobuf module for proto/cumulus.proto into
# src/sdk/python/cumulus/_proto/ (cumulus_pb2.py + cumulus_pb2.pyi). The output
# is committed, so neither the job image nor users need protoc. Use Debian's
# protoc 3.21 (protobuf-compiler) to match Debian's python3-protobuf 4.21.
#
# Usage: scripts/gen-python-proto.sh           regenerate in place
#        scripts/gen-python-proto.sh --check   exit 1 when the committed files are stale
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

have protoc || die "protoc not found (Debian package protobuf-compiler)"
out="${CUMULUS_ROOT}/src/sdk/python/cumulus/_proto"
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

protoc -I "${CUMULUS_ROOT}/proto" --python_out="${tmp}" --pyi_out="${tmp}" \
  "${CUMULUS_ROOT}/proto/cumulus.proto"

if [[ ${1:-} == "--check" ]]; then
  for f in cumulus_pb2.py cumulus_pb2.pyi; do
    cmp -s "${tmp}/${f}" "${out}/${f}" ||
      die "src/sdk/python/cumulus/_proto/${f} is stale: run scripts/gen-python-proto.sh"
  done
  info "generated Python proto code is up to date"
  exit 0
fi
mkdir -p "${out}"
cp "${tmp}/cumulus_pb2.py" "${tmp}/cumulus_pb2.pyi" "${out}/"
info "wrote ${out#"${CUMULUS_ROOT}"/}/cumulus_pb2.py and cumulus_pb2.pyi"
