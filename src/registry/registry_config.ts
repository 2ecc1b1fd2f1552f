/**
 * The configuration file of a Docker Distribution registry (Debian's
 * `docker-registry`) serving job images to the Swarm's nodes: bound to one
 * address, storing blobs on the local disk, serving TLS with a certificate of
 * the project's CA (Docker engines trust it through
 * /etc/docker/certs.d/<host:port>/ca.crt, see {@link trustDirOf}). Pure.
 * @module
 */

/** What {@link registryConfigYaml} writes. */
export interface RegistryConfigOptions {
  /** `host:port` to listen on (the Swarm manager's address). */
  addr: string;
  /** Directory the registry stores blobs and manifests in. */
  storageDir: string;
  /** PEM files of the server certificate and key (absent: plain HTTP, for loopback only). */
  tls?: { certFile: string; keyFile: string };
}

/** JSON strings are valid YAML scalars: paths with any character stay one value. */
const q = (s: string) => JSON.stringify(s);

/**
 * The registry's config.yml.
 * @example
 * registryConfigYaml({ addr: "198.18.0.1:5000", storageDir: "/data/registry/store" });
 */
export function registryConfigYaml(opts: RegistryConfigOptions): string {
  const lines = [
    "version: 0.1",
    "log:",
    "  level: info",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${q(opts.storageDir)}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: ${q(opts.addr)}`,
    "  headers:",
    "    X-Content-Type-Options: [nosniff]",
  ];
  if (opts.tls) {
    lines.push(
      "  tls:",
      `    certificate: ${q(opts.tls.certFile)}`,
      `    key: ${q(opts.tls.keyFile)}`,
    );
  }
  return lines.join("\n") + "\n";
}

/**
 * The directory in which a Docker engine looks for the CA of registry
 * `addr` (read at each pull and push: no engine restart).
 * @default certsDir "/etc/docker/certs.d"
 */
export function trustDirOf(addr: string, certsDir = "/etc/docker/certs.d"): string {
  return `${certsDir}/${addr}`;
}
