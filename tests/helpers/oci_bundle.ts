/**
 * Test and bench helper for cumulus-gpu-runc through real runc: an OCI rootfs exported from a
 * local image, bundles made from `runc spec`, stand-in character devices (mknod) for a GPU's
 * nodes, and version-1 grant files as the agent writes them.
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;
const DOCKER_HOST = Deno.env.get("DOCKER_HOST") ?? "unix:///run/cumulus-docker.sock";
const decoder = new TextDecoder();

/** The wrapper the Chronos build makes (`bash chronos/build.sh release`), or CHRONOS_BUILD_DIR's. */
export const GPU_RUNC = `${
  Deno.env.get("CHRONOS_BUILD_DIR") ?? `${ROOT}chronos/build`
}/cumulus-gpu-runc`;

/** The image whose filesystem the test containers run. @default "cumulus-base:bookworm" */
export const BASE_IMAGE = Deno.env.get("CUMULUS_BASE_IMAGE") ?? "cumulus-base:bookworm";

/** What a finished process printed. */
export interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion (no shell) and returns its exit code and output. */
export async function runProgram(
  program: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<ProcessResult> {
  const out = await new Deno.Command(program, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

async function mustRun(program: string, args: string[], env: Record<string, string> = {}) {
  const r = await runProgram(program, args, env);
  if (r.code !== 0) {
    throw new Error(`${program} ${args.join(" ")}: exit ${r.code}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Fails with a clear message when the Chronos build has no wrapper (the test builds nothing). */
export async function requireWrapper(): Promise<string> {
  try {
    await Deno.stat(GPU_RUNC);
  } catch {
    throw new Error(
      `cumulus-gpu-runc: not built, got no ${GPU_RUNC} (run bash chronos/build.sh release)`,
    );
  }
  return GPU_RUNC;
}

/** Exports `image`'s filesystem into `dest` (docker create + docker export, no container run). */
export async function exportRootfs(image: string, dest: string): Promise<void> {
  const env = { DOCKER_HOST };
  const id = (await mustRun("docker", ["create", image, "true"], env)).trim();
  const tar = `${dest}.tar`;
  try {
    await mustRun("docker", ["export", "-o", tar, id], env);
    await Deno.mkdir(dest, { recursive: true });
    await mustRun("tar", ["-C", dest, "-xf", tar]);
  } finally {
    await runProgram("docker", ["rm", "-f", id], env);
    await Deno.remove(tar).catch(() => {});
  }
}

/** An OCI runtime config (only the parts the tests touch are typed). */
export interface OciConfig {
  process: { terminal: boolean; args: string[]; env: string[]; [k: string]: unknown };
  root: { path: string; readonly: boolean };
  linux: {
    devices?: Record<string, unknown>[];
    resources?: { devices?: Record<string, unknown>[]; [k: string]: unknown };
    namespaces?: { type: string; path?: string }[];
    [k: string]: unknown;
  };
  mounts?: Record<string, unknown>[];
  [k: string]: unknown;
}

/** `runc spec`'s default config, as this runc writes it. */
export async function runcSpec(): Promise<OciConfig> {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-runc-spec-" });
  try {
    await mustRun("runc", ["spec", "--bundle", dir]);
    return JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A config for one container: `spec` with a shared read-only rootfs, no terminal, args, env. */
export function containerConfig(
  spec: OciConfig,
  rootfs: string,
  args: string[],
  env: string[],
): OciConfig {
  const config: OciConfig = structuredClone(spec);
  config.root = { path: rootfs, readonly: true };
  config.process.terminal = false;
  config.process.args = args;
  config.process.env = [...spec.process.env, ...env];
  return config;
}

/** A stand-in device node: made with mknod, numbers of a real driver runc does not allow. */
export interface StandIn {
  /** The node's path on the host (in the test's temp dir). */
  hostPath: string;
  major: number;
  minor: number;
  /** The misc driver behind the numbers, for messages. */
  driver: string;
}

// Misc drivers whose nodes root opens read/write without a capability and without side effects;
// none is in runc's default device allow list (only tun, 10:200, is).
const MISC_CANDIDATES = ["fuse", "userfaultfd", "loop-control", "vga_arbiter", "btrfs-control"];

/**
 * Makes `names.length` stand-in nodes in `dir`, each on a different misc device that this kernel
 * has and that the test process can open read/write on the host, so an open that fails inside a
 * container can only be the container's device cgroup.
 */
export async function makeStandIns(dir: string, names: string[]): Promise<Record<string, StandIn>> {
  const misc = new Map<string, number>();
  for (const line of (await Deno.readTextFile("/proc/misc")).split("\n")) {
    const m = line.trim().match(/^(\d+) (\S+)$/);
    if (m) misc.set(m[2], Number(m[1]));
  }
  const out: Record<string, StandIn> = {};
  const usable: string[] = [];
  for (const driver of MISC_CANDIDATES) {
    if (usable.length === names.length) break;
    const minor = misc.get(driver);
    if (minor === undefined) continue;
    const hostPath = `${dir}/${names[usable.length]}`;
    await mustRun("mknod", ["-m", "0600", hostPath, "c", "10", String(minor)]);
    try {
      (await Deno.open(hostPath, { read: true, write: true })).close();
    } catch {
      await Deno.remove(hostPath);
      continue;
    }
    out[names[usable.length]] = { hostPath, major: 10, minor, driver };
    usable.push(driver);
  }
  if (usable.length < names.length) {
    throw new Error(
      `stand-in devices: need ${names.length} openable misc devices, got ${usable.length} ` +
        `(${usable.join(", ")}) from ${MISC_CANDIDATES.join(", ")}`,
    );
  }
  return out;
}

/** A version-1 grant file's content (see the issue 13 contract). */
export interface GrantFile {
  version: 1;
  jobId: string;
  partitionId: string;
  gpu: { vendor: "nvidia" | "amd" | "intel"; index: number; uuid: string; pciBusId: string };
  devices: { path: string; hostPath?: string }[];
  mounts: { source: string; destination: string; writable?: boolean }[];
  env: Record<string, string>;
  pathEnv: Record<string, string[]>;
  hostIpc: boolean;
}

/** Writes a grant as the agent does: `<partitionId>.json`, mode 0600, in a 0700 directory. */
export async function writeGrant(dir: string, grant: GrantFile): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const path = `${dir}/${grant.partitionId}.json`;
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(grant), { mode: 0o600 });
  await Deno.chmod(`${path}.tmp`, 0o600);
  await Deno.rename(`${path}.tmp`, path);
}

/** Writes `config` as `<bundle>/config.json` and returns the exact bytes written. */
export async function writeBundle(bundle: string, config: OciConfig): Promise<string> {
  await Deno.mkdir(bundle, { recursive: true });
  const text = JSON.stringify(config, null, 2);
  await Deno.writeTextFile(`${bundle}/config.json`, text);
  return text;
}

/** A container id nobody else uses. */
export function containerId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}
