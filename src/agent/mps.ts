/**
 * NVIDIA MPS control daemons, one per GPU, which make a fractional partition's memory a hard
 * limit (`CUDA_MPS_PINNED_DEVICE_MEM_LIMIT` in the job's grant). Each runs as
 * `nvidia-cuda-mps-control -d` with `CUDA_VISIBLE_DEVICES=<uuid>` and its own pipe and log
 * directories, `<mps dir>/<uuid>/pipe` and `.../log` (`CUMULUS_MPS_DIR`, default
 * `/run/cumulus/mps`). The daemon writes `nvidia-cuda-mps-control.pid` into its pipe directory
 * and creates its `control` socket there; the socket outlives the daemon, the pid file does not,
 * so "running" is: the pid file names a live process of that binary.
 *
 * Decide, then act: {@link planMps} is a pure function of the GPUs, the live partitions, the
 * daemons' liveness and the time; {@link MpsControl} starts and stops daemons.
 * @module
 */
import { pause } from "../core/pause.ts";
import { GpuLayerError } from "./gpu_error.ts";

/** Where MPS directories go when `CUMULUS_MPS_DIR` is not set. */
export const DEFAULT_MPS_DIR = "/run/cumulus/mps";

/** How long a GPU keeps its daemon after its last fractional partition went. */
export const MPS_IDLE_STOP_MS = 30_000;

/** The pid file the control daemon writes into its pipe directory. */
export const MPS_PID_FILE = "nvidia-cuda-mps-control.pid";

/** The control socket the daemon listens on, in its pipe directory. */
export const MPS_CONTROL_SOCKET = "control";

/** A GPU's MPS directories. */
export interface MpsPaths {
  /** `CUDA_MPS_PIPE_DIRECTORY` of the daemon and its clients (bind-mounted into jobs). */
  pipeDir: string;
  /** `CUDA_MPS_LOG_DIRECTORY` of the daemon (control.log, server.log). */
  logDir: string;
  /** Lock file that serialises starting this GPU's daemon (outside the pipe directory). */
  lockFile: string;
}

/**
 * The MPS directories of GPU `uuid` under `mpsDir`.
 * @example
 * mpsPaths("/run/cumulus/mps", "GPU-1").pipeDir; // "/run/cumulus/mps/GPU-1/pipe"
 */
export function mpsPaths(mpsDir: string, uuid: string): MpsPaths {
  if (!/^GPU-[0-9a-fA-F-]+$/.test(uuid)) {
    throw new GpuLayerError(8, `uuid: not an NVIDIA GPU UUID, got '${uuid}'`);
  }
  const base = `${mpsDir.replace(/\/+$/, "")}/${uuid}`;
  return { pipeDir: `${base}/pipe`, logDir: `${base}/log`, lockFile: `${base}/start.lock` };
}

/** A GPU that MPS may serve: its UUID and the Chronos devices that are it. */
export interface MpsGpu {
  /** NVIDIA UUID. */
  uuid: string;
  /** Chronos device indexes that map to this GPU (normally one). */
  devices: number[];
}

/** What the planner reads of a live partition. */
export interface MpsPartitionView {
  /** Chronos device index. */
  device: number;
  /** Fraction of the device; MPS serves those below 1. */
  memory: number;
}

/** A daemon's observed state, with the planner's memory of when its GPU went idle. */
export interface MpsDaemonState {
  /** GPU UUID. */
  uuid: string;
  /** True when its control daemon runs. */
  alive: boolean;
  /** When its GPU was first seen without a fractional partition (null: busy or unknown). */
  idleSinceMs: number | null;
}

/** Kinds of {@link MpsAction}. */
export const MPS_ACTION = {
  /** Start the GPU's daemon (it is needed and not running: first use, or it died). */
  start: "start",
  /** Stop the GPU's daemon (no fractional partition for the idle time). */
  stop: "stop",
} as const;

/** What to do to one GPU's daemon. */
export type MpsAction =
  | { kind: typeof MPS_ACTION.start; uuid: string }
  | { kind: typeof MPS_ACTION.stop; uuid: string; idleMs: number };

/** Output of {@link planMps}. */
export interface MpsPlan {
  /** Actions, in GPU order. */
  actions: MpsAction[];
  /** The idle-since memory to pass back next time, by UUID (null: busy). */
  idleSinceMs: Map<string, number | null>;
}

/**
 * Decides what to do to each GPU's MPS daemon (pure). A GPU with a fractional partition needs
 * its daemon: start it when it is not running. A GPU without one lets its daemon run for
 * `idleStopMs` after it was first seen idle (a job placed right after keeps it), then stops it.
 * Whole-GPU partitions do not use MPS.
 * @param gpus GPUs MPS may serve.
 * @param partitions Live partitions.
 * @param daemons Each GPU's daemon as last observed; missing GPUs count as not running.
 * @param nowMs Current time.
 * @param idleStopMs Idle time before a stop.
 * @returns The actions and the idle-since memory for the next call.
 * @example
 * planMps([{ uuid: "GPU-1", devices: [0] }], [{ device: 0, memory: 0.5 }], [], Date.now());
 * // → { actions: [{ kind: "start", uuid: "GPU-1" }], idleSinceMs: Map { "GPU-1" => null } }
 */
export function planMps(
  gpus: readonly MpsGpu[],
  partitions: readonly MpsPartitionView[],
  daemons: readonly MpsDaemonState[],
  nowMs: number,
  idleStopMs: number = MPS_IDLE_STOP_MS,
): MpsPlan {
  const byUuid = new Map(daemons.map((d) => [d.uuid, d]));
  const fractional = new Set(partitions.filter((p) => p.memory < 1).map((p) => p.device));
  const actions: MpsAction[] = [];
  const idleSinceMs = new Map<string, number | null>();
  for (const gpu of gpus) {
    const d = byUuid.get(gpu.uuid);
    const alive = d?.alive ?? false;
    if (gpu.devices.some((i) => fractional.has(i))) {
      idleSinceMs.set(gpu.uuid, null);
      if (!alive) actions.push({ kind: MPS_ACTION.start, uuid: gpu.uuid });
      continue;
    }
    if (!alive) {
      idleSinceMs.set(gpu.uuid, null);
      continue;
    }
    const since = d?.idleSinceMs ?? nowMs;
    idleSinceMs.set(gpu.uuid, since);
    if (nowMs - since >= idleStopMs) {
      actions.push({ kind: MPS_ACTION.stop, uuid: gpu.uuid, idleMs: nowMs - since });
      idleSinceMs.set(gpu.uuid, null);
    }
  }
  return { actions, idleSinceMs };
}

/** Settings of {@link MpsControl}. */
export interface MpsControlOptions {
  /** The `nvidia-cuda-mps-control` binary (`CUMULUS_MPS_CONTROL`, else found on PATH). */
  binary: string;
  /** Root of the per-GPU directories (`CUMULUS_MPS_DIR`). */
  mpsDir: string;
  /** Environment the daemon inherits; any `CUDA_*` in it is dropped. */
  env: Record<string, string>;
  /**
   * How long a started daemon may take to write its pid file and open its control socket.
   * @default {5000}
   */
  readyTimeoutMs?: number;
  /**
   * How long the binary itself may run (it forks the daemon and exits; `quit` returns at once).
   * @default {10000}
   */
  commandTimeoutMs?: number;
}

/** What {@link MpsControl.ensure} found. */
export type MpsEnsureResult = "running" | "started";

function basename(path: string): string {
  return path.replace(/\/+$/, "").split("/").pop() ?? path;
}

/**
 * Starts, checks and stops one GPU's MPS control daemon. The binary is injectable, so the
 * wiring (argv, environment, directories) is tested with a stand-in script.
 * @example
 * const mps = new MpsControl({ binary: "/usr/bin/nvidia-cuda-mps-control",
 *   mpsDir: "/run/cumulus/mps", env: Deno.env.toObject() });
 * await mps.ensure("GPU-8f0c…");
 */
export class MpsControl {
  #o: Required<MpsControlOptions>;

  /** Creates the executor; nothing runs until a method is called. */
  constructor(opts: MpsControlOptions) {
    this.#o = { readyTimeoutMs: 5_000, commandTimeoutMs: 10_000, ...opts };
  }

  /** The directories of GPU `uuid`. */
  paths(uuid: string): MpsPaths {
    return mpsPaths(this.#o.mpsDir, uuid);
  }

  /** The exact environment the daemon of `uuid` gets. */
  daemonEnv(uuid: string): Record<string, string> {
    const { pipeDir, logDir } = this.paths(uuid);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.#o.env)) if (!k.startsWith("CUDA_")) env[k] = v;
    env.CUDA_VISIBLE_DEVICES = uuid;
    env.CUDA_MPS_PIPE_DIRECTORY = pipeDir;
    env.CUDA_MPS_LOG_DIRECTORY = logDir;
    return env;
  }

  /** The daemon's pid when it runs (its pid file names a live process of the binary), else null. */
  async pid(uuid: string): Promise<number | null> {
    let text: string;
    try {
      text = await Deno.readTextFile(`${this.paths(uuid).pipeDir}/${MPS_PID_FILE}`);
    } catch {
      return null;
    }
    if (!/^\s*\d{1,10}\s*$/.test(text)) return null;
    const pid = Number(text.trim());
    let cmdline: string;
    try {
      // Also false for a zombie (empty cmdline) and for a pid reused by another program.
      cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    } catch {
      return null;
    }
    const name = basename(this.#o.binary);
    return cmdline.split("\0").some((arg) => basename(arg) === name) ? pid : null;
  }

  /** True when the daemon of `uuid` runs. */
  async alive(uuid: string): Promise<boolean> {
    return await this.pid(uuid) !== null;
  }

  async #ready(uuid: string): Promise<boolean> {
    try {
      await Deno.lstat(`${this.paths(uuid).pipeDir}/${MPS_CONTROL_SOCKET}`);
    } catch {
      return false;
    }
    return await this.alive(uuid);
  }

  async #run(args: string[], env: Record<string, string>, stdin?: string): Promise<number> {
    const child = new Deno.Command(this.#o.binary, {
      args,
      env,
      clearEnv: true,
      stdin: stdin === undefined ? "null" : "piped",
      // The daemon forks and keeps running: it must not hold a pipe this process waits on.
      stdout: "null",
      stderr: "null",
      signal: AbortSignal.timeout(this.#o.commandTimeoutMs),
    }).spawn();
    if (stdin !== undefined) {
      const w = child.stdin.getWriter();
      try {
        await w.write(new TextEncoder().encode(stdin));
      } finally {
        await w.close().catch(() => {});
      }
    }
    return (await child.status).code;
  }

  /**
   * Starts the daemon of `uuid` (`<binary> -d`) and waits until it is ready (pid file and
   * control socket), so a job started right after connects to it rather than running without
   * MPS. Throws {@link GpuLayerError} when it fails or does not become ready in time.
   */
  async start(uuid: string): Promise<void> {
    const { pipeDir, logDir } = this.paths(uuid);
    const env = this.daemonEnv(uuid);
    let code: number;
    try {
      await Deno.mkdir(pipeDir, { recursive: true, mode: 0o755 });
      await Deno.mkdir(logDir, { recursive: true, mode: 0o755 });
      // A stale pid file of a dead daemon would read as a live one if its pid were reused.
      await Deno.remove(`${pipeDir}/${MPS_PID_FILE}`).catch(() => {});
      code = await this.#run(["-d"], env);
    } catch (err) {
      throw new GpuLayerError(
        8,
        `mps: cannot start ${this.#o.binary} for ${uuid}: ${(err as Error).message}`,
      );
    }
    if (code !== 0) {
      throw new GpuLayerError(
        8,
        `mps: ${this.#o.binary} -d for ${uuid} exited with ${code} (see ${logDir}/control.log)`,
      );
    }
    const deadline = Date.now() + this.#o.readyTimeoutMs;
    while (!await this.#ready(uuid)) {
      if (Date.now() >= deadline) {
        throw new GpuLayerError(
          8,
          `mps: the control daemon for ${uuid} was not ready within ${this.#o.readyTimeoutMs} ms ` +
            `(see ${logDir}/control.log)`,
        );
      }
      await pause(10);
    }
  }

  /**
   * Starts the daemon of `uuid` unless it runs. Holds an exclusive lock on the GPU's lock file
   * meanwhile, so the agent's commands and its daemon never start two.
   */
  async ensure(uuid: string): Promise<MpsEnsureResult> {
    const { lockFile } = this.paths(uuid);
    let lock: Deno.FsFile;
    try {
      await Deno.mkdir(lockFile.slice(0, lockFile.lastIndexOf("/")), {
        recursive: true,
        mode: 0o755,
      });
      lock = await Deno.open(lockFile, { create: true, write: true, mode: 0o600 });
    } catch (err) {
      throw new GpuLayerError(8, `mps: lock ${lockFile}: ${(err as Error).message}`);
    }
    try {
      await lock.lock(true);
      if (await this.alive(uuid)) return "running";
      await this.start(uuid);
      return "started";
    } finally {
      lock.close();
    }
  }

  /**
   * Asks the daemon of `uuid` to quit (`echo quit | <binary>` with its pipe directory). It
   * exits once its servers' clients are done. Throws {@link GpuLayerError} when the binary fails.
   */
  async stop(uuid: string): Promise<void> {
    let code: number;
    try {
      code = await this.#run([], this.daemonEnv(uuid), "quit\n");
    } catch (err) {
      throw new GpuLayerError(8, `mps: quit for ${uuid}: ${(err as Error).message}`);
    }
    if (code !== 0) throw new GpuLayerError(8, `mps: quit for ${uuid} exited with ${code}`);
  }
}
