/**
 * Image references as Docker reads them: whether a reference names a registry
 * host, and the digest-pinned reference of an image pushed to one. Pure.
 * @module
 */

/** Registry `host[:port]` grammar (a DNS name or IPv4 address, an optional port). */
const REGISTRY_RE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]{1,5})?$/;
/** Repository path grammar (lowercase components separated by `/`). */
const REPO_RE =
  /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
/** A content digest as registries return it. */
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/**
 * The registry host a reference names, or null for a short name Docker would
 * look up on Docker Hub or find locally (`cumulus-job:latest`, `library/x`).
 * Docker's rule: the first path component is a host when it holds a `.` or a
 * `:` or is `localhost`.
 * @example
 * registryOf("198.18.0.1:5000/cumulus-job@sha256:…"); // "198.18.0.1:5000"
 * registryOf("cumulus-job:latest"); // null
 */
export function registryOf(ref: string): string | null {
  const slash = ref.indexOf("/");
  if (slash <= 0) return null;
  const first = ref.slice(0, slash);
  return first.includes(".") || first.includes(":") || first === "localhost" ? first : null;
}

/** Whether `value` is a registry `host[:port]` (config key `registry`). */
export function isRegistryAddress(value: string): boolean {
  if (!REGISTRY_RE.test(value)) return false;
  const port = value.includes(":") ? Number(value.slice(value.lastIndexOf(":") + 1)) : 443;
  return port > 0 && port < 65536;
}

/** Whether `value` is a repository path Docker accepts (`cumulus-job`, `team/train`). */
export function isRepositoryPath(value: string): boolean {
  return value.length <= 255 && REPO_RE.test(value);
}

/** Whether `value` is a `sha256:` digest. */
export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value);
}

/**
 * The reference a service uses for an image pushed to `registry`: pinned by
 * the manifest digest, so every node runs the same bytes and a node that has
 * them already does not pull again.
 * @throws {RangeError} when an argument does not match its grammar
 * @example
 * pinnedRef("198.18.0.1:5000", "cumulus-job", "sha256:ab…");
 * // "198.18.0.1:5000/cumulus-job@sha256:ab…"
 */
export function pinnedRef(registry: string, repo: string, digest: string): string {
  if (!isRegistryAddress(registry)) {
    throw new RangeError(`registry: not host[:port], got ${registry}`);
  }
  if (!isRepositoryPath(repo)) throw new RangeError(`repo: not a repository path, got ${repo}`);
  if (!isDigest(digest)) throw new RangeError(`digest: not sha256:<64 hex>, got ${digest}`);
  return `${registry}/${repo}@${digest}`;
}
