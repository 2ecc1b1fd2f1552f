# shellcheck shell=bash
# s3rver (npm): a real S3-protocol server backed by a directory, used by the
# checkpoint tests and the embedded default (DESIGN.md section 6: no MinIO
# here). Installed into its own prefix so npm never prunes Deno's.
# Needs common.sh.

CUMULUS_S3RVER_VERSION="3.7.1"

# s3rver_bin: the s3rver entry point run with node.
s3rver_bin() {
  printf '%s\n' "${CUMULUS_ROOT}/.tools/s3rver/node_modules/s3rver/bin/s3rver.js"
}

# ensure_s3rver: install s3rver@CUMULUS_S3RVER_VERSION unless it is there.
ensure_s3rver() {
  local pkg="${CUMULUS_ROOT}/.tools/s3rver/node_modules/s3rver/package.json" got=""
  [[ -f ${pkg} ]] && got="$(node -p "require('${pkg}').version" 2>/dev/null || true)"
  if [[ ${got} == "${CUMULUS_S3RVER_VERSION}" ]]; then
    info "s3rver ${got} at .tools/s3rver (cached)"
    return 0
  fi
  info "installing s3rver@${CUMULUS_S3RVER_VERSION} from npm"
  npm install --no-save --no-audit --no-fund --prefix "${CUMULUS_ROOT}/.tools/s3rver" \
    "s3rver@${CUMULUS_S3RVER_VERSION}" </dev/null || die "npm install s3rver failed"
  [[ -f $(s3rver_bin) ]] || die "s3rver missing after install: $(s3rver_bin)"
}
