/**
 * Step "gpu" of `cumulus-agent join`: on a machine with GPUs, the OCI runtime
 * wrapper `cumulus-gpu-runc` (docs/gpus.md) installed into PREFIX/bin and made
 * Docker's default runtime, as scripts/setup-worker.sh does (its section 4b):
 * merged into daemon.json with its `runtimeArgs` (the grants directory and the
 * downstream runtime: nvidia-container-runtime where installed, else runc),
 * `no-new-privileges` on, the grants and MPS directories made (0700), and the
 * engine restarted (systemd) so that it loads the runtime, before the Swarm
 * join. GPUs are found by the agent's own inventory (src/agent/gpu_inventory.ts)
 * under CUMULUS_GPU_ROOT (default "/"). On a GPU machine the agent's login must
 * be root: the wrapper trusts only root-owned grants, and MPS serves only a root
 * daemon's jobs. Everything is checked before the join token is spent, and a
 * second run changes nothing.
 * @module
 */
import { discoverHostGpus } from "./gpu_inventory.ts";
import { GPU_VENDOR, type GpuVendor, type PhysicalGpu } from "./gpu_map.ts";
import { JoinError } from "./join_error.ts";
import { installFile, type SetupHost } from "./join_setup.ts";

/** The Docker daemon config the runtime is registered in when no --docker-config is given. */
export const DEFAULT_DOCKER_CONFIG = "/etc/docker/daemon.json";

/** The grants and MPS directories' parent when no --gpu-state-dir is given. */
export const DEFAULT_GPU_STATE_DIR = "/run/cumulus";

/** The wrapper's file name (in chronos/build, beside libchronos.so in a build, in PREFIX/bin). */
export const GPU_RUNTIME_NAME = "cumulus-gpu-runc";

/** The runtime's name in daemon.json. */
export const RUNTIME_NAME = "cumulus";

/** What the GPU step needs. */
export interface GpuRuntimeOptions {
  /** Install prefix: the wrapper goes to PREFIX/bin. */
  prefix: string;
  /** The login the orchestrator uses (must be root on a GPU machine). */
  user: string;
  /** The wrapper to install ("" = beside `chronosLib`). */
  gpuRuntime: string;
  /** The libchronos.so being installed (the wrapper is looked for beside it). */
  chronosLib: string;
  /** `--no-gpu-runtime`: never install the wrapper. */
  noGpuRuntime: boolean;
  /** The Docker daemon config to merge the runtime into. */
  dockerConfig: string;
  /** Parent of the grants and MPS directories. */
  gpuStateDir: string;
}

/** The machine as the GPU step sees it; tests replace it. */
export interface GpuHost extends SetupHost {
  /** Where GPUs are looked for (CUMULUS_GPU_ROOT, default "/"). */
  gpuRoot(): string;
  /** The path of an executable on PATH, or "" when there is none. */
  findCommand(name: string): Promise<string>;
}

/** The GPUs the wrapper is for: the first vendor of NVIDIA, AMD, Intel found, and its count. */
export interface FoundGpus {
  vendor: GpuVendor;
  count: number;
}

/** What the check decided: the wrapper to install for these GPUs, or nothing. */
export interface GpuPlan {
  gpus: FoundGpus;
  /** The wrapper file to install. */
  source: string;
}

/**
 * The vendor the wrapper is installed for: NVIDIA, then AMD, then Intel (the
 * order setup-worker.sh and the agent's access kind use); null for none.
 */
export function gpusOf(gpus: readonly PhysicalGpu[]): FoundGpus | null {
  for (const vendor of [GPU_VENDOR.nvidia, GPU_VENDOR.amd, GPU_VENDOR.intel]) {
    const count = gpus.filter((g) => g.vendor === vendor).length;
    if (count > 0) return { vendor, count };
  }
  return null;
}

/** The GPUs found under `root` (the agent's inventory: `/proc/driver/nvidia`, `/sys/class/drm`). */
export async function findGpus(root: string): Promise<FoundGpus | null> {
  return gpusOf((await discoverHostGpus({ root })).gpus);
}

/** The grants and MPS directories under the GPU state directory. */
export function gpuDirs(gpuStateDir: string): { grants: string; mps: string } {
  return { grants: `${gpuStateDir}/gpu-grants`, mps: `${gpuStateDir}/mps` };
}

/** The installed wrapper's path under `prefix`. */
export function gpuRuntimePathIn(prefix: string): string {
  return `${prefix}/bin/${GPU_RUNTIME_NAME}`;
}

/**
 * The agent's environment on a GPU worker (forced command and daemon): where it
 * writes grants and keeps MPS directories, as the wrapper reads them.
 */
export function gpuAgentEnv(gpuStateDir: string): string[] {
  const d = gpuDirs(gpuStateDir);
  return [`CUMULUS_GPU_GRANTS_DIR=${d.grants}`, `CUMULUS_MPS_DIR=${d.mps}`];
}

/** The runtime entry's settings. */
export interface RuntimeEntry {
  /** The installed wrapper. */
  wrapper: string;
  /** The grants directory the wrapper reads. */
  grantsDir: string;
  /** The runtime the wrapper execs. */
  downstream: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function sortedKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortedKeys);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v).sort().map((k) => [k, sortedKeys((v as Record<string, Json>)[k])]),
    );
  }
  return v;
}

function sameJson(a: Json | undefined, b: Json): boolean {
  return JSON.stringify(sortedKeys(a ?? null)) === JSON.stringify(sortedKeys(b));
}

/**
 * daemon.json with the wrapper as Docker's default runtime, merged (other
 * runtimes and settings stay): `runtimes.cumulus` (path, runtimeArgs),
 * `default-runtime: cumulus`, `no-new-privileges: true` (every container starts
 * with no_new_privs: Swarm 20.10 has no per-service field for it).
 * @param current The file's text, null or blank when there is none.
 * @returns The new text (keys sorted, 2-space indent), or null when `current`
 *   already holds these settings (however it is formatted).
 * @throws {JoinError} "local" when `current` is not a JSON object.
 */
export function withGpuRuntime(
  current: string | null,
  entry: RuntimeEntry,
  path = DEFAULT_DOCKER_CONFIG,
): string | null {
  let cfg: Record<string, Json> = {};
  if (current !== null && current.trim() !== "") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(current);
    } catch (err) {
      throw new JoinError("local", `${path} is not valid JSON: ${(err as Error).message}`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new JoinError("local", `${path} is not a JSON object`);
    }
    cfg = parsed as Record<string, Json>;
  }
  const runtimes = cfg.runtimes ?? {};
  if (runtimes === null || typeof runtimes !== "object" || Array.isArray(runtimes)) {
    throw new JoinError("local", `${path}: "runtimes" is not a JSON object`);
  }
  const want: Json = {
    path: entry.wrapper,
    runtimeArgs: [`--cumulus-grants=${entry.grantsDir}`, `--cumulus-runc=${entry.downstream}`],
  };
  if (
    sameJson(runtimes[RUNTIME_NAME], want) && cfg["default-runtime"] === RUNTIME_NAME &&
    cfg["no-new-privileges"] === true
  ) {
    return null;
  }
  const next: Record<string, Json> = {
    ...cfg,
    runtimes: { ...runtimes, [RUNTIME_NAME]: want },
    "default-runtime": RUNTIME_NAME,
    "no-new-privileges": true,
  };
  return `${JSON.stringify(sortedKeys(next), null, 2)}\n`;
}

/**
 * The check, before the join token is spent (it changes nothing): are there
 * GPUs, is the login root, is there a wrapper to install.
 * @returns The plan, or null when no wrapper is to be installed (said why).
 * @throws {JoinError} "usage" when GPUs are found and the login is not root, or
 *   the wrapper is not found.
 */
export async function checkGpuRuntime(
  o: GpuRuntimeOptions,
  host: GpuHost,
): Promise<GpuPlan | null> {
  if (o.noGpuRuntime) return null;
  const gpus = await findGpus(host.gpuRoot());
  if (gpus === null) return null;
  if (o.user !== "root") {
    throw new JoinError(
      "usage",
      `${gpus.vendor} GPUs found: the agent must run as root to write the device grants (and ` +
        "start the MPS daemons) that hand jobs their GPUs; rerun with --user root (or " +
        "--no-gpu-runtime: jobs then get no GPU)",
    );
  }
  const source = o.gpuRuntime ||
    `${o.chronosLib.slice(0, o.chronosLib.lastIndexOf("/") + 1)}${GPU_RUNTIME_NAME}`;
  if (!(await host.exists(source))) {
    throw new JoinError(
      "usage",
      `${gpus.vendor} GPUs found, but no ${GPU_RUNTIME_NAME} at ${source} to hand jobs their ` +
        "GPUs: pass --gpu-runtime PATH (chronos/build/cumulus-gpu-runc), or --no-gpu-runtime",
    );
  }
  return { gpus, source };
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0] ?? "";
}

async function defaultRuntime(host: SetupHost): Promise<string> {
  const r = await host.run(["docker", "info", "--format", "{{.DefaultRuntime}}"])
    .catch(() => ({ code: 1, stdout: "", stderr: "" }));
  return r.code === 0 ? r.stdout.trim() : "";
}

/**
 * Step "gpu": the wrapper, its directories, daemon.json and the engine's
 * restart (only where daemon.json is the engine's own, systemd runs it, and the
 * engine does not run the wrapper already); one line per change, "already"
 * lines when there is none.
 * @returns The agent's extra environment ({@link gpuAgentEnv}), [] without a plan.
 * @throws {JoinError} "docker" when no runtime to run downstream is found or the
 *   engine does not come back with it; "local" when a file cannot be written.
 */
export async function ensureGpuRuntime(
  o: GpuRuntimeOptions,
  plan: GpuPlan | null,
  host: GpuHost,
): Promise<string[]> {
  if (plan === null) {
    host.say(
      o.noGpuRuntime
        ? "gpu: runtime wrapper not installed (--no-gpu-runtime)"
        : "gpu: no GPU found: jobs run without device access (partitions are bookkeeping only)",
    );
    return [];
  }
  const { vendor, count } = plan.gpus;
  const wrapper = gpuRuntimePathIn(o.prefix);
  await installFile(
    host,
    `${GPU_RUNTIME_NAME} (${count} ${vendor} GPU(s) found)`,
    plan.source,
    wrapper,
    0o755,
    "gpu",
  );
  const downstream = await host.findCommand("nvidia-container-runtime") ||
    await host.findCommand("runc");
  if (!downstream) {
    throw new JoinError("docker", `no runc found for ${GPU_RUNTIME_NAME} to run (install runc)`);
  }
  const dirs = gpuDirs(o.gpuStateDir);
  for (const d of [o.gpuStateDir, dirs.grants, dirs.mps]) {
    if (await host.exists(d)) continue;
    // The agent writes the grants; the wrapper (root) refuses any others could have written.
    const r = await host.run(["install", "-d", "-m", "0700", "-o", o.user, d]);
    if (r.code !== 0) throw new JoinError("local", `install -d ${d}: ${firstLine(r.stderr)}`);
    host.say(`gpu: created ${d} (0700)`);
  }
  const raw = await host.readBytes(o.dockerConfig);
  const next = withGpuRuntime(
    raw === null ? null : new TextDecoder().decode(raw),
    { wrapper, grantsDir: dirs.grants, downstream },
    o.dockerConfig,
  );
  if (next === null) {
    host.say(`gpu: ${GPU_RUNTIME_NAME} already Docker's default runtime in ${o.dockerConfig}`);
  } else {
    await host.writeFileAtomic(o.dockerConfig, new TextEncoder().encode(next), 0o644)
      .catch((err) => {
        throw new JoinError("local", `cannot write ${o.dockerConfig}: ${(err as Error).message}`);
      });
    host.say(
      `gpu: made ${GPU_RUNTIME_NAME} Docker's default runtime in ${o.dockerConfig} ` +
        `(downstream ${downstream})`,
    );
  }
  const running = await defaultRuntime(host);
  if (running === RUNTIME_NAME && next === null) {
    host.say(`gpu: the Docker engine runs ${GPU_RUNTIME_NAME} already`);
    return gpuAgentEnv(o.gpuStateDir);
  }
  const systemd = await host.exists("/run/systemd/system");
  if (o.dockerConfig !== DEFAULT_DOCKER_CONFIG || !systemd) {
    host.say(
      `gpu: note: restart dockerd so that it loads ${o.dockerConfig} ` +
        `(its default runtime is ${running || "unknown"} now)`,
    );
    return gpuAgentEnv(o.gpuStateDir);
  }
  host.say("gpu: restarting the Docker engine (systemctl restart docker) to load the runtime");
  const r = await host.run(["systemctl", "restart", "docker"]);
  if (r.code !== 0) {
    throw new JoinError("docker", `systemctl restart docker failed: ${firstLine(r.stderr)}`);
  }
  const after = await defaultRuntime(host);
  if (after !== RUNTIME_NAME) {
    throw new JoinError(
      "docker",
      `the Docker engine came back with default runtime ${after || "unknown"}, not ` +
        `${RUNTIME_NAME}: see journalctl -u docker and ${o.dockerConfig}`,
    );
  }
  host.say(`gpu: the Docker engine runs ${GPU_RUNTIME_NAME} as its default runtime`);
  return gpuAgentEnv(o.gpuStateDir);
}
