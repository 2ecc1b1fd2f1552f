/**
 * A Docker Distribution registry process (Debian's `docker-registry`) that
 * the Swarm's nodes pull job images from: bound to one address (the manager's
 * address on the Swarm's network), storing in `<data dir>/registry/store`,
 * serving TLS with a certificate of a CA kept in `<data dir>/registry/tls`.
 * Started and stopped by its owner (`startRegistry` … `stop()`).
 * @module
 */
import { ensureCertificates } from "../tls/mod.ts";
import { pause } from "../core/mod.ts";
import { registryConfigYaml, trustDirOf } from "./registry_config.ts";

/** Where Debian's `docker-registry` package installs the binary. */
export const REGISTRY_BINARY = "/usr/bin/docker-registry";

/** The registry could not start, or a trust file could not be written. */
export class RegistryError extends Error {
  /** Stable code for callers that branch on errors. */
  readonly code = "REGISTRY_FAILED";
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RegistryError";
  }
}

/** Options of {@link startRegistry}. */
export interface RegistryOptions {
  /** `host:port` to listen on; `host` must be an address of this machine. */
  addr: string;
  /** The data dir; the registry keeps `registry/` in it. */
  dataDir: string;
  /** The registry binary. @default REGISTRY_BINARY */
  binary?: string;
  /** Milliseconds to wait for the port to open. @default 15000 */
  startTimeoutMs?: number;
}

/** A running registry. */
export interface RunningRegistry {
  /** `host:port` it serves (config `registry` of the orchestrator). */
  addr: string;
  /** PEM of the CA that signed its certificate (engines must trust it: {@link trustRegistry}). */
  caPem: string;
  /** Its process id. */
  pid: number;
  /** Its log file. */
  logFile: string;
  /** Stops it (SIGTERM, then SIGKILL after 5 s); stored images stay. */
  stop(): Promise<void>;
}

/** Paths of the registry under a data dir. */
export function registryPaths(dataDir: string) {
  const root = `${dataDir}/registry`;
  return {
    root,
    store: `${root}/store`,
    tls: `${root}/tls`,
    config: `${root}/config.yml`,
    log: `${root}/registry.log`,
  };
}

function splitAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(":");
  const port = Number(addr.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RegistryError(`addr: expected host:port, got ${addr}`);
  }
  return { host: addr.slice(0, i), port };
}

async function portOpen(host: string, port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: host, port })).close();
    return true;
  } catch {
    return false;
  }
}

async function tailOf(path: string, lines = 5): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/**
 * Starts the registry and resolves once its port answers.
 * @throws {RegistryError} when the binary is missing, it exits, or its port stays closed
 * @example
 * const reg = await startRegistry({ addr: "198.18.0.1:5000", dataDir: "./cumulus-data" });
 * await trustRegistry(reg.addr, reg.caPem);
 * // … config registry: 198.18.0.1:5000 …
 * await reg.stop();
 */
export async function startRegistry(opts: RegistryOptions): Promise<RunningRegistry> {
  const { host, port } = splitAddr(opts.addr);
  const p = registryPaths(opts.dataDir);
  await Deno.mkdir(p.store, { recursive: true });
  const certs = await ensureCertificates({ dir: p.tls, hosts: [host] });
  await Deno.writeTextFile(
    p.config,
    registryConfigYaml({
      addr: opts.addr,
      storageDir: p.store,
      tls: { certFile: certs.paths.serverCert, keyFile: certs.paths.serverKey },
    }),
  );
  if (await portOpen(host, port)) throw new RegistryError(`${opts.addr} is in use already`);
  const binary = opts.binary ?? REGISTRY_BINARY;
  try {
    await Deno.stat(binary);
  } catch (err) {
    throw new RegistryError(
      `cannot run ${binary} (Debian package docker-registry): ${(err as Error).message}`,
      { cause: err },
    );
  }
  // The registry writes its log straight to the file (sh only redirects, then execs it,
  // with every value passed as an argument): no pipe through this process, so the
  // registry outlives an owner that is killed and is not killed later by a broken pipe.
  const child = new Deno.Command("sh", {
    args: ["-c", 'exec "$0" serve "$1" 2>>"$2"', binary, p.config, p.log],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const stop = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Ended meanwhile.
      }
      const killer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Ended meanwhile.
        }
      }, 5000);
      await status;
      clearTimeout(killer);
    }
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000);
  while (!(await portOpen(host, port))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new RegistryError(
        `registry on ${opts.addr} did not start (log ${p.log}): ${await tailOf(p.log)}`,
      );
    }
    await pause(50);
  }
  const caPem = await Deno.readTextFile(certs.paths.caCert);
  return { addr: opts.addr, caPem, pid: child.pid, logFile: p.log, stop };
}

/**
 * Makes the Docker engines of this machine trust the registry at `addr`:
 * writes its CA to `<certsDir>/<addr>/ca.crt`, which engines read at each
 * pull and push. Every worker needs the same file (docs/workers.md, "How job
 * images reach workers"). Resolves with a function that removes it again.
 * @default certsDir "/etc/docker/certs.d"
 * @throws {RegistryError} when the file cannot be written (needs root)
 */
export async function trustRegistry(
  addr: string,
  caPem: string,
  certsDir = "/etc/docker/certs.d",
): Promise<() => Promise<void>> {
  const dir = trustDirOf(addr, certsDir);
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/ca.crt`, caPem);
  } catch (err) {
    throw new RegistryError(`cannot write ${dir}/ca.crt: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return async () => {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
}
