/**
 * GPU grant files (version 1): what the agent promises a partition's container, written when it
 * creates the partition and read by the OCI runtime wrapper `cumulus-gpu-runc` when the job's
 * container is created. One file per partition, `<grants dir>/<partition id>.json`, mode 0600 in
 * a 0700 directory (default `/run/cumulus/gpu-grants`, `CUMULUS_GPU_GRANTS_DIR`), written
 * atomically (temp file + rename) so the wrapper never reads half of one. The shape is the
 * contract of issue 13 (docs/gpus.md).
 * @module
 */
import { GpuLayerError } from "./gpu_error.ts";
import { type DriverFiles, type GrantMount, type HostGpus, underRoot } from "./gpu_inventory.ts";
import { GPU_VENDOR, type GpuVendor, type PhysicalGpu } from "./gpu_map.ts";

/** Version of the grant shape written here. */
export const GRANT_VERSION = 1;

/** Where grants go when `CUMULUS_GPU_GRANTS_DIR` is not set. */
export const DEFAULT_GRANTS_DIR = "/run/cumulus/gpu-grants";

/** A partition id, as Chronos makes them (and as grant file names must be). */
export const PARTITION_ID_RE = /^p-[0-9a-f]{12}$/;

const MIB = 1024 * 1024;

/** A device node to add to the container. */
export interface GrantDevice {
  /** Path inside the container. */
  path: string;
  /** Node on the host to `stat` for type, major and minor; `path` when absent. */
  hostPath?: string;
}

/** One grant file. */
export interface GpuGrant {
  /** Always {@link GRANT_VERSION}. */
  version: typeof GRANT_VERSION;
  /** The Cumulus job id (the container's `CUMULUS_JOB_ID`; no `:g<k>` group suffix). */
  jobId: string;
  /** The partition, equal to the file's name. */
  partitionId: string;
  /** The physical GPU. */
  gpu: {
    /** Vendor. */
    vendor: GpuVendor;
    /** Chronos device index of the partition. */
    index: number;
    /** NVIDIA UUID; "" for AMD and Intel. */
    uuid: string;
    /** PCI address. */
    pciBusId: string;
  };
  /** Device nodes (empty with nvidia-container-toolkit, whose runtime adds them). */
  devices: GrantDevice[];
  /** Bind mounts: driver files read-only, MPS's pipe directory writable. */
  mounts: GrantMount[];
  /** Variables set in the container, over the image's. */
  env: Record<string, string>;
  /** Directories prepended (':'-joined) to variables of the container. */
  pathEnv: Record<string, string[]>;
  /** True under MPS: the container shares the host's IPC namespace with the MPS server. */
  hostIpc: boolean;
}

/** What a grant is built from. */
export interface GrantInput {
  /** Chronos job id of the partition (`J` or `J:g<k>`). */
  chronosJobId: string;
  /** The partition. */
  partition: { id: string; device: number; memory: number; memoryBytes: number };
  /** The GPU the partition's device is. */
  gpu: PhysicalGpu;
  /** The host's driver files, toolkit and root. */
  host: Pick<HostGpus, "root" | "toolkit" | "driver">;
  /** MPS's pipe directory for this GPU when MPS enforces the partition; null otherwise. */
  mpsPipeDir: string | null;
  /** `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE` (1..100) under MPS; none by default. */
  computeShare?: number;
}

/**
 * The Cumulus job id of a partition's Chronos job id: a group member's `J:g<k>` is `J`.
 * @example
 * grantJobId("j-0123456789ab:g3"); // "j-0123456789ab"
 */
export function grantJobId(chronosJobId: string): string {
  const m = /^(.*):g\d+$/.exec(chronosJobId);
  return m ? m[1] : chronosJobId;
}

function copyDriver(driver: DriverFiles): { mounts: GrantMount[]; pathEnv: GpuGrant["pathEnv"] } {
  return {
    mounts: driver.mounts.map((m) => ({ ...m })),
    pathEnv: Object.fromEntries(Object.entries(driver.pathEnv).map(([k, v]) => [k, [...v]])),
  };
}

/**
 * The grant of one partition (pure). Devices and driver mounts come from the inventory, except
 * with nvidia-container-toolkit (its runtime injects them from `NVIDIA_VISIBLE_DEVICES`); under
 * MPS the grant adds the pipe directory (writable), `CUDA_MPS_PIPE_DIRECTORY`, the memory limit
 * `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=<MiB>M` (device 0: the job sees its GPU as 0) and the host
 * IPC namespace.
 * @example
 * const grant = buildGrant({ chronosJobId: "j-0123456789ab", partition, gpu, host,
 *   mpsPipeDir: "/run/cumulus/mps/GPU-1/pipe" });
 */
export function buildGrant(input: GrantInput): GpuGrant {
  const { partition, gpu, host } = input;
  const toolkit = host.toolkit && gpu.vendor === GPU_VENDOR.nvidia;
  const devices: GrantDevice[] = toolkit ? [] : gpu.devices.map((path) => {
    const hostPath = underRoot(host.root, path);
    return hostPath === path ? { path } : { path, hostPath };
  });
  const driver = gpu.vendor === GPU_VENDOR.nvidia && !toolkit
    ? copyDriver(host.driver)
    : { mounts: [], pathEnv: {} };
  const env: Record<string, string> = {
    CUMULUS_GPU_MEMORY_BYTES: String(partition.memoryBytes),
  };
  const mounts = driver.mounts;
  const mps = input.mpsPipeDir;
  if (mps !== null) {
    mounts.push({ source: mps, destination: mps, writable: true });
    env.CUDA_MPS_PIPE_DIRECTORY = mps;
    env.CUDA_MPS_PINNED_DEVICE_MEM_LIMIT = `0=${Math.floor(partition.memoryBytes / MIB)}M`;
    if (input.computeShare !== undefined) {
      env.CUDA_MPS_ACTIVE_THREAD_PERCENTAGE = String(input.computeShare);
    }
  }
  return {
    version: GRANT_VERSION,
    jobId: grantJobId(input.chronosJobId),
    partitionId: partition.id,
    gpu: { vendor: gpu.vendor, index: partition.device, uuid: gpu.uuid, pciBusId: gpu.pciBusId },
    devices,
    mounts,
    env,
    pathEnv: driver.pathEnv,
    hostIpc: mps !== null,
  };
}

function grantPath(dir: string, partitionId: string): string {
  if (!PARTITION_ID_RE.test(partitionId)) {
    throw new GpuLayerError(8, `partitionId: not a partition id, got '${partitionId}'`);
  }
  return `${dir.replace(/\/+$/, "")}/${partitionId}.json`;
}

function ioError(what: string, err: unknown): GpuLayerError {
  return new GpuLayerError(8, `${what}: ${(err as Error)?.message ?? String(err)}`);
}

/**
 * Writes `grant` to `<dir>/<partition id>.json` atomically, mode 0600, creating `dir` with mode
 * 0700 when missing (and tightening it to 0700 when it exists). Throws {@link GpuLayerError}.
 */
export async function writeGrant(dir: string, grant: GpuGrant): Promise<string> {
  const path = grantPath(dir, grant.partitionId);
  try {
    // Parents get the usual mode (the MPS directory may share one); the grants directory 0700.
    const parent = dir.replace(/\/+$/, "").replace(/\/[^/]*$/, "") || "/";
    await Deno.mkdir(parent, { recursive: true });
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.chmod(dir, 0o700);
  } catch (err) {
    throw ioError(`grants directory ${dir}`, err);
  }
  const tmp = `${dir.replace(/\/+$/, "")}/.${grant.partitionId}.${Deno.pid}.` +
    `${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.writeTextFile(tmp, JSON.stringify(grant, null, 2) + "\n", {
      createNew: true,
      mode: 0o600,
    });
    await Deno.chmod(tmp, 0o600);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw ioError(`grant ${path}`, err);
  }
  return path;
}

/** Removes the grant of `partitionId`; false when there was none. Throws {@link GpuLayerError}. */
export async function removeGrant(dir: string, partitionId: string): Promise<boolean> {
  const path = grantPath(dir, partitionId);
  try {
    // Look first: a worker without grants needs no write access to release partitions.
    await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return false;
    }
    throw ioError(`removing grant ${path}`, err);
  }
  try {
    await Deno.remove(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw ioError(`removing grant ${path}`, err);
  }
}

/** Reads one grant back (for tests and diagnostics); null when there is none. */
export async function readGrant(dir: string, partitionId: string): Promise<GpuGrant | null> {
  try {
    return JSON.parse(await Deno.readTextFile(grantPath(dir, partitionId))) as GpuGrant;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw ioError(`reading grant of ${partitionId}`, err);
  }
}

/** Partition ids that have a grant in `dir` (none when `dir` does not exist). */
export async function listGrantIds(dir: string): Promise<string[]> {
  const ids: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const id = e.name.endsWith(".json") ? e.name.slice(0, -5) : "";
      if (e.isFile && PARTITION_ID_RE.test(id)) ids.push(id);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw ioError(`listing grants in ${dir}`, err);
  }
  return ids.sort();
}

/**
 * Grants whose partition is gone (pure). The grant ids must have been read BEFORE the live
 * partitions were listed: a partition is always created before its grant is written, so a grant
 * read first whose partition is missing from a later list was released, expired or reaped.
 */
export function staleGrants(
  grantIds: readonly string[],
  livePartitionIds: Iterable<string>,
): string[] {
  const live = new Set(livePartitionIds);
  return grantIds.filter((id) => !live.has(id));
}
