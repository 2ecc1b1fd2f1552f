/**
 * The registry an orchestrator runs itself (config `registry_serve`): at the
 * address of config `registry`, its store and CA in the orchestrator's data
 * dir, trusted by this machine's Docker engines (certs.d), and its CA handed
 * to joining workers. A registry an earlier run left behind (the orchestrator
 * was killed, its supervisor restarted it) is stopped first: its pid file
 * names it, and it is stopped only when that process is this data dir's
 * `docker-registry serve`.
 * @module
 */
import {
  registryPaths,
  type RunningRegistry,
  startRegistry,
  trustRegistry,
} from "./registry_process.ts";
import { pause, processAlive } from "../core/mod.ts";

/** Options of {@link startOwnedRegistry}. */
export interface OwnedRegistryOptions {
  /** `host:port` (config `registry`). */
  addr: string;
  /** The orchestrator's data dir. */
  dataDir: string;
  /** The registry binary (tests). */
  binary?: string;
  /** Where engines look for registry CAs. @default "/etc/docker/certs.d" */
  certsDir?: string;
  /** Diagnostic log. */
  log: (msg: string) => void;
}

/** A registry this orchestrator runs. */
export interface OwnedRegistry {
  /** The running process. */
  registry: RunningRegistry;
  /** Its CA's PEM file (what joining workers install). */
  caFile: string;
  /** Stops it; the store, the CA and the trust file stay. */
  stop(): Promise<void>;
}

/** Where the pid of the registry this data dir's orchestrator runs is kept. */
export function registryPidFile(dataDir: string): string {
  return `${registryPaths(dataDir).root}/registry.pid`;
}

/**
 * Stops the registry an earlier run of this data dir left running: only a
 * live process whose command line is `docker-registry serve <this config>`.
 * Resolves with its pid, or null when there was none.
 */
export async function stopLeftRegistry(dataDir: string): Promise<number | null> {
  const pidFile = registryPidFile(dataDir);
  let pid: number;
  try {
    pid = Number((await Deno.readTextFile(pidFile)).trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !processAlive(pid)) return null;
  let cmdline = "";
  try {
    cmdline = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0").join(" ");
  } catch {
    return null;
  }
  if (!cmdline.includes(`serve ${registryPaths(dataDir).config}`)) return null;
  Deno.kill(pid, "SIGTERM");
  for (let i = 0; i < 100 && processAlive(pid); i++) await pause(50);
  if (processAlive(pid)) Deno.kill(pid, "SIGKILL");
  for (let i = 0; i < 40 && processAlive(pid); i++) await pause(50);
  return pid;
}

/**
 * Starts the orchestrator's own registry (see the module doc).
 * @throws {RegistryError} when it cannot start or its CA cannot be trusted here
 */
export async function startOwnedRegistry(opts: OwnedRegistryOptions): Promise<OwnedRegistry> {
  const left = await stopLeftRegistry(opts.dataDir);
  if (left !== null) opts.log(`stopped the registry (pid ${left}) an earlier run left`);
  const registry = await startRegistry({
    addr: opts.addr,
    dataDir: opts.dataDir,
    binary: opts.binary,
  });
  const pidFile = registryPidFile(opts.dataDir);
  await Deno.writeTextFile(pidFile, `${registry.pid}\n`);
  try {
    await trustRegistry(registry.addr, registry.caPem, opts.certsDir);
  } catch (err) {
    await registry.stop();
    throw err;
  }
  opts.log(`serving the job image registry on ${registry.addr} (log ${registry.logFile})`);
  return {
    registry,
    caFile: `${registryPaths(opts.dataDir).tls}/ca.pem`,
    stop: async () => {
      await registry.stop();
      await Deno.remove(pidFile).catch(() => {});
    },
  };
}
