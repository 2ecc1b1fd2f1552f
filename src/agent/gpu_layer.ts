/**
 * The agent's GPU layer as its commands use it: settings from the environment, the worker's view
 * (host GPUs + which Chronos device is which), and handing created partitions their GPU (MPS
 * daemon first when it enforces the partition, then the grant file) before the command answers,
 * because the job's container starts right after.
 *
 * Environment: `CUMULUS_GPU_ROOT` (default "/", for tests), `CUMULUS_GPU_GRANTS_DIR` (default
 * `/run/cumulus/gpu-grants`), `CUMULUS_MPS_DIR` (default `/run/cumulus/mps`),
 * `CUMULUS_MPS_CONTROL` (default `nvidia-cuda-mps-control` on PATH), `CUMULUS_GPU_MAP`
 * (`<device>=<pci bus id>[,…]`: pins Chronos devices to GPUs when OpenCL reports no address).
 * @module
 */
import type { DeviceInfo, Partition } from "./chronos.ts";
import { GPU_ERROR_STATUS, GpuLayerError } from "./gpu_error.ts";
import {
  accessOf,
  discoverHostGpus,
  GPU_ACCESS,
  type GpuAccess,
  type HostGpus,
} from "./gpu_inventory.ts";
import {
  type ChronosDeviceView,
  GPU_VENDOR,
  mapDevicesToGpus,
  normalizePciBusId,
  type PhysicalGpu,
} from "./gpu_map.ts";
import { buildGrant, DEFAULT_GRANTS_DIR, removeGrant, writeGrant } from "./grants.ts";
import { DEFAULT_MPS_DIR, MpsControl, type MpsGpu } from "./mps.ts";

/** The GPU layer's settings, parsed once from the environment. */
export interface GpuSettings {
  /** Root the host's GPU files are read under. */
  root: string;
  /** Directory of grant files. */
  grantsDir: string;
  /** Root of MPS's per-GPU directories. */
  mpsDir: string;
  /** MPS control binary set by the operator; undefined: search PATH. */
  mpsControl: string | undefined;
  /** PATH to search for nvidia-container-runtime and nvidia-cuda-mps-control. */
  path: string;
  /** Chronos device index → PCI address pinned by the operator. */
  pinned: Map<number, string>;
  /** Environment MPS daemons inherit (PATH, LD_LIBRARY_PATH when set). */
  daemonEnv: Record<string, string>;
}

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function absolute(name: string, value: string | undefined, fallback: string): string {
  if (value === undefined || value === "") return fallback;
  if (!value.startsWith("/") || value.includes("\0")) {
    throw new GpuLayerError(
      GPU_ERROR_STATUS.config,
      `${name}: must be an absolute path, got '${value}'`,
    );
  }
  return value;
}

/**
 * Parses `CUMULUS_GPU_MAP` (`0=0000:19:00.0,1=0000:1a:00.0`) into device → PCI address.
 * Throws {@link GpuLayerError} (CONFIG) when malformed.
 */
export function parseGpuMap(text: string | undefined): Map<number, string> {
  const out = new Map<number, string>();
  if (text === undefined || text.trim() === "") return out;
  for (const item of text.split(",")) {
    const m = /^\s*(\d{1,6})\s*=\s*(\S+)\s*$/.exec(item);
    const pci = m ? normalizePciBusId(m[2]) : null;
    if (!m || pci === null || out.has(Number(m[1]))) {
      throw new GpuLayerError(
        GPU_ERROR_STATUS.config,
        `CUMULUS_GPU_MAP: expected <device>=<pci bus id>[,...] with each device once, got '${text}'`,
      );
    }
    out.set(Number(m[1]), pci);
  }
  return out;
}

/** The GPU settings from an environment reader. Throws {@link GpuLayerError} (CONFIG). */
export function gpuSettings(env: (name: string) => string | undefined): GpuSettings {
  const daemonEnv: Record<string, string> = { PATH: env("PATH") || DEFAULT_PATH };
  const ld = env("LD_LIBRARY_PATH");
  if (ld) daemonEnv.LD_LIBRARY_PATH = ld;
  const control = env("CUMULUS_MPS_CONTROL");
  return {
    root: absolute("CUMULUS_GPU_ROOT", env("CUMULUS_GPU_ROOT"), "/"),
    grantsDir: absolute(
      "CUMULUS_GPU_GRANTS_DIR",
      env("CUMULUS_GPU_GRANTS_DIR"),
      DEFAULT_GRANTS_DIR,
    ),
    mpsDir: absolute("CUMULUS_MPS_DIR", env("CUMULUS_MPS_DIR"), DEFAULT_MPS_DIR),
    mpsControl: control ? absolute("CUMULUS_MPS_CONTROL", control, "") : undefined,
    path: env("PATH") || DEFAULT_PATH,
    pinned: parseGpuMap(env("CUMULUS_GPU_MAP")),
    daemonEnv,
  };
}

/** A Chronos device as Chronos reports it, with the PCI address it may carry. */
export type ChronosDevice = DeviceInfo & { pciBusId?: string };

/** The worker as the GPU layer sees it. */
export interface GpuView {
  /** Settings it was read with. */
  settings: GpuSettings;
  /** What was found on the host. */
  host: HostGpus;
  /** Chronos's devices. */
  devices: ChronosDevice[];
  /** Chronos device index → its GPU, only for GPUs that can be handed out. */
  mapped: Map<number, PhysicalGpu>;
  /** Chronos device index → its GPU, also those without device nodes. */
  identified: Map<number, PhysicalGpu>;
  /** The worker's access kind. */
  access: GpuAccess;
  /** The MPS executor, or null when MPS is not installed. */
  mps: MpsControl | null;
}

/** Reads the host and maps Chronos's devices onto it. */
export async function loadGpuView(
  settings: GpuSettings,
  devices: ChronosDevice[],
): Promise<GpuView> {
  const host = await discoverHostGpus({
    root: settings.root,
    path: settings.path,
    mpsControl: settings.mpsControl,
  });
  const views: ChronosDeviceView[] = devices.map((d) => ({
    index: d.index,
    vendor: d.vendor,
    platform: d.platform,
    type: d.type,
    pciBusId: typeof d.pciBusId === "string" ? d.pciBusId : undefined,
  }));
  const identified = mapDevicesToGpus(views, host.gpus, settings.pinned);
  const mapped = new Map([...identified].filter(([, g]) => g.devices.length > 0));
  const mps = host.mpsControl === null ? null : new MpsControl({
    binary: host.mpsControl,
    mpsDir: settings.mpsDir,
    env: settings.daemonEnv,
  });
  return {
    settings,
    host,
    devices,
    mapped,
    identified,
    access: accessOf(host, mapped.values()),
    mps,
  };
}

/** GPUs whose fractional partitions MPS enforces (NVIDIA, mapped, MPS installed). */
export function mpsGpus(view: GpuView): MpsGpu[] {
  if (view.mps === null) return [];
  const byUuid = new Map<string, number[]>();
  for (const [index, gpu] of view.mapped) {
    if (gpu.vendor !== GPU_VENDOR.nvidia || gpu.uuid === "") continue;
    byUuid.set(gpu.uuid, [...(byUuid.get(gpu.uuid) ?? []), index]);
  }
  return [...byUuid].map(([uuid, devices]) => ({ uuid, devices }));
}

/** The GPU MPS enforces `partition` on, or null (whole GPU, not NVIDIA, no MPS, no access). */
export function mpsGpuOf(
  view: GpuView,
  partition: Pick<Partition, "device" | "memory">,
): PhysicalGpu | null {
  const gpu = view.mapped.get(partition.device);
  if (view.mps === null || gpu === undefined || partition.memory >= 1) return null;
  return gpu.vendor === GPU_VENDOR.nvidia && gpu.uuid !== "" ? gpu : null;
}

/** Options of {@link provisionGpus}. */
export interface ProvisionOptions {
  /** `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE` for MPS-enforced partitions (1..100). */
  computeShare?: number;
}

/**
 * Hands each partition its GPU: for those on a GPU that can be handed out and that name a job,
 * starts the GPU's MPS daemon when MPS enforces the partition, then writes its grant. Returns
 * the partition ids that got a grant. Throws {@link GpuLayerError}; grants written by this call
 * before a failure are left for the caller to remove (see {@link removeGrants}).
 */
export async function provisionGpus(
  view: GpuView,
  partitions: readonly Partition[],
  opts: ProvisionOptions = {},
): Promise<string[]> {
  const written: string[] = [];
  for (const p of partitions) {
    const gpu = view.mapped.get(p.device);
    if (gpu === undefined || p.jobId === "") continue;
    const mpsGpu = mpsGpuOf(view, p);
    let mpsPipeDir: string | null = null;
    if (mpsGpu !== null && view.mps !== null) {
      await view.mps.ensure(mpsGpu.uuid);
      mpsPipeDir = view.mps.paths(mpsGpu.uuid).pipeDir;
    }
    await writeGrant(
      view.settings.grantsDir,
      buildGrant({
        chronosJobId: p.jobId,
        partition: p,
        gpu,
        host: view.host,
        mpsPipeDir,
        computeShare: opts.computeShare,
      }),
    );
    written.push(p.id);
  }
  return written;
}

/** Removes the grants of `partitionIds` (missing ones are fine). Throws {@link GpuLayerError}. */
export async function removeGrants(
  grantsDir: string,
  partitionIds: Iterable<string>,
): Promise<void> {
  for (const id of partitionIds) await removeGrant(grantsDir, id);
}

/** The `gpu` object of `gpus --json` for one device (null: no GPU that can be handed out). */
export interface DeviceGpu {
  /** Vendor. */
  vendor: string;
  /** NVIDIA UUID ("" otherwise). */
  uuid: string;
  /** PCI address. */
  pciBusId: string;
  /** NVIDIA device minor (null otherwise). */
  minor: number | null;
  /** Device nodes handed to a job. */
  devices: string[];
}

/** One device of `cumulus-agent gpus --json`. */
export type InventoryDevice = ChronosDevice & { pciBusId: string; gpu: DeviceGpu | null };

/** `cumulus-agent gpus --json`. */
export interface Inventory {
  /** The worker's access kind. */
  access: GpuAccess;
  /** Chronos's devices with their GPU. */
  devices: InventoryDevice[];
}

/** The inventory `gpus --json` prints (pure). */
export function inventoryOf(view: GpuView): Inventory {
  return {
    access: view.access,
    devices: view.devices.map((d) => {
      const g = view.mapped.get(d.index);
      const reported = typeof d.pciBusId === "string" ? d.pciBusId : "";
      return {
        ...d,
        pciBusId: reported || view.identified.get(d.index)?.pciBusId || "",
        gpu: g === undefined ? null : {
          vendor: g.vendor,
          uuid: g.uuid,
          pciBusId: g.pciBusId,
          minor: g.minor,
          devices: [...g.devices],
        },
      };
    }),
  };
}

/** The access column of one device in `gpus`'s table. */
export function deviceAccess(view: GpuView, index: number): GpuAccess {
  const g = view.mapped.get(index);
  if (g === undefined) return GPU_ACCESS.none;
  if (g.vendor === GPU_VENDOR.nvidia) {
    return view.host.toolkit ? GPU_ACCESS.nvidiaToolkit : GPU_ACCESS.nvidia;
  }
  return g.vendor;
}

/**
 * Loads the view once per agent process or `serve --stdio` session: the GPUs of a worker do not
 * change under a running agent, and reading them costs a few ms per command otherwise.
 */
export class GpuSession {
  #env: (name: string) => string | undefined;
  #settings: GpuSettings | undefined;
  #view: Promise<GpuView> | undefined;

  /** Creates the session over an environment reader; nothing is read yet. */
  constructor(env: (name: string) => string | undefined) {
    this.#env = env;
  }

  /** The settings (parsed on first use). Throws {@link GpuLayerError} (CONFIG). */
  settings(): GpuSettings {
    return this.#settings ??= gpuSettings(this.#env);
  }

  /** The view, loaded on first use with `devices` (Chronos's devices). */
  view(devices: () => Promise<ChronosDevice[]>): Promise<GpuView> {
    if (this.#view === undefined) {
      const settings = this.settings();
      this.#view = devices().then((d) => loadGpuView(settings, d));
      // A failed load is retried by the next command rather than remembered.
      this.#view.catch(() => this.#view = undefined);
    }
    return this.#view;
  }
}
