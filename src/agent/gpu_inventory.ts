/**
 * The worker's physical GPUs, read from files under a root (default "/", `CUMULUS_GPU_ROOT` in
 * tests): NVIDIA from `/proc/driver/nvidia/gpus/<bus>/information`, AMD and Intel from
 * `/sys/class/drm/renderD*`; the device nodes a job needs for each; NVIDIA's user-space driver
 * libraries to bind-mount into jobs; whether nvidia-container-toolkit or MPS is installed.
 * Nothing here fails for a missing or unreadable file: what cannot be read is not there, and a
 * worker with nothing is a "no device access" worker.
 * @module
 */
import { GPU_VENDOR, type GpuVendor, normalizePciBusId, type PhysicalGpu } from "./gpu_map.ts";

/** What a worker can hand to jobs (`cumulus-agent gpus --json`'s `access`). */
export const GPU_ACCESS = {
  /** NVIDIA GPUs, injected by Cumulus's OCI runtime wrapper. */
  nvidia: "nvidia",
  /** NVIDIA GPUs, injected by nvidia-container-toolkit's runtime. */
  nvidiaToolkit: "nvidia-toolkit",
  /** AMD GPUs (`/dev/kfd` + render nodes). */
  amd: "amd",
  /** Intel GPUs (render and card nodes). */
  intel: "intel",
  /** No Chronos device is a GPU this worker can hand out. */
  none: "none",
} as const;

/** A {@link GPU_ACCESS} value. */
export type GpuAccess = typeof GPU_ACCESS[keyof typeof GPU_ACCESS];

/** A bind mount into a job's container (always read-only unless `writable`). */
export interface GrantMount {
  /** Path on the host. */
  source: string;
  /** Path inside the container. */
  destination: string;
  /** Only MPS's pipe directory: its clients write to the pipes. */
  writable?: boolean;
}

/** NVIDIA's user-space driver files to bind-mount into jobs, and the paths to prepend. */
export interface DriverFiles {
  /** Read-only bind mounts. */
  mounts: GrantMount[];
  /** Variable → directories to prepend (`LD_LIBRARY_PATH`, `PATH`). */
  pathEnv: Record<string, string[]>;
}

/** Everything found on the host. */
export interface HostGpus {
  /** The root the files were read under ("/" in production). */
  root: string;
  /** Every GPU found, by PCI address; those with empty `devices` cannot be handed out. */
  gpus: PhysicalGpu[];
  /** NVIDIA's driver files (empty without NVIDIA GPUs, and with the toolkit, which mounts its own). */
  driver: DriverFiles;
  /** True when `nvidia-container-runtime` is on PATH. */
  toolkit: boolean;
  /** Host path of `nvidia-cuda-mps-control`, or null when MPS is not installed. */
  mpsControl: string | null;
}

/** Inputs of {@link discoverHostGpus}. */
export interface DiscoverOptions {
  /**
   * Root the host's files are read under.
   * @default {"/"}
   */
  root?: string;
  /** PATH to search for `nvidia-container-runtime` and `nvidia-cuda-mps-control` (under root). */
  path?: string;
  /** `CUMULUS_MPS_CONTROL`: the MPS control binary to use (a host path); else searched on PATH. */
  mpsControl?: string;
}

/** Driver library directories searched when `/usr/local/nvidia` is absent. */
const LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"];
/** NVIDIA user-space libraries a CUDA job needs (`<name>`, `<name>.1`, `<name>.580.95`, …). */
const DRIVER_LIBS = [
  "libcuda.so",
  "libnvidia-ml.so",
  "libnvidia-ptxjitcompiler.so",
  "libnvidia-nvvm.so",
  "libnvidia-gpucomp.so",
  "libcudadebugger.so",
];
/** Where per-file driver mounts go inside the container. */
export const DRIVER_DIR = "/usr/local/cumulus-driver";
/** The H100 machine's driver layout, mounted whole when present. */
const NVIDIA_DIR = "/usr/local/nvidia";
/** Device nodes every NVIDIA GPU shares (added when present). */
const NVIDIA_SHARED_NODES = ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"];
/** Searched after PATH for the MPS control binary (where the H100 machine keeps it). */
const MPS_EXTRA_DIRS = [`${NVIDIA_DIR}/bin`];

/**
 * `path` as seen under `root`.
 * @example
 * underRoot("/tmp/fixture", "/dev/nvidia0"); // "/tmp/fixture/dev/nvidia0"
 */
export function underRoot(root: string, path: string): string {
  const r = root.replace(/\/+$/, "");
  return r === "" ? path : `${r}${path}`;
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch {
    return null;
  }
}

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null;
  }
}

async function listDir(path: string): Promise<string[]> {
  try {
    const names: string[] = [];
    for await (const e of Deno.readDir(path)) names.push(e.name);
    return names.sort();
  } catch {
    return [];
  }
}

/** What `/proc/driver/nvidia/gpus/<bus>/information` says. */
export interface NvidiaInformation {
  /** `Model:`. */
  model: string;
  /** `GPU UUID:` ("" when absent). */
  uuid: string;
  /** `Bus Location:`, normalised ("" when absent or malformed). */
  pciBusId: string;
  /** `Device Minor:` (null when absent or malformed). */
  minor: number | null;
}

/**
 * Parses an NVIDIA `information` file (`Key: \t value` lines; values may hold colons).
 * @example
 * parseNvidiaInformation("Model: \t\t NVIDIA H100\nDevice Minor: \t 0\n").minor; // 0
 */
export function parseNvidiaInformation(text: string): NvidiaInformation {
  const fields = new Map<string, string>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const uuid = fields.get("GPU UUID") ?? "";
  const minor = fields.get("Device Minor") ?? "";
  return {
    model: fields.get("Model") ?? "",
    uuid: /^GPU-[0-9a-fA-F-]+$/.test(uuid) ? uuid : "",
    pciBusId: normalizePciBusId(fields.get("Bus Location") ?? "") ?? "",
    minor: /^\d{1,4}$/.test(minor) ? Number(minor) : null,
  };
}

async function existing(root: string, paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) if (await statOrNull(underRoot(root, p)) !== null) out.push(p);
  return out;
}

async function nvidiaGpus(root: string): Promise<PhysicalGpu[]> {
  const base = underRoot(root, "/proc/driver/nvidia/gpus");
  const shared = await existing(root, NVIDIA_SHARED_NODES);
  const out: PhysicalGpu[] = [];
  for (const name of await listDir(base)) {
    const text = await readOrNull(`${base}/${name}/information`);
    if (text === null) continue;
    const info = parseNvidiaInformation(text);
    const pciBusId = info.pciBusId || normalizePciBusId(name);
    if (pciBusId === null || pciBusId === "") continue;
    const own = info.minor === null ? [] : await existing(root, [`/dev/nvidia${info.minor}`]);
    // Without its own node or a UUID (NVIDIA_VISIBLE_DEVICES, MPS) the GPU cannot be handed out.
    const usable = own.length === 1 && info.uuid !== "";
    out.push({
      vendor: GPU_VENDOR.nvidia,
      uuid: info.uuid,
      pciBusId,
      minor: info.minor,
      model: info.model,
      devices: usable ? [...own, ...shared] : [],
    });
  }
  return out;
}

/** DRM nodes (`renderD128`, `card0`) by the PCI address of their device. */
async function drmNodesByPci(root: string): Promise<Map<string, string[]>> {
  const base = underRoot(root, "/sys/class/drm");
  const out = new Map<string, string[]>();
  for (const name of await listDir(base)) {
    if (!/^(renderD|card)\d+$/.test(name)) continue;
    let target: string;
    try {
      target = await Deno.readLink(`${base}/${name}/device`);
    } catch {
      continue;
    }
    const pci = normalizePciBusId(target.replace(/\/+$/, "").split("/").pop() ?? "");
    if (pci === null) continue;
    out.set(pci, [...(out.get(pci) ?? []), name]);
  }
  return out;
}

const DRM_VENDOR: Record<string, GpuVendor> = { "0x1002": "amd", "0x8086": "intel" };

async function drmGpus(root: string): Promise<PhysicalGpu[]> {
  const base = underRoot(root, "/sys/class/drm");
  const kfd = await existing(root, ["/dev/kfd"]);
  const out: PhysicalGpu[] = [];
  for (const [pci, names] of await drmNodesByPci(root)) {
    const render = names.find((n) => n.startsWith("renderD"));
    if (render === undefined) continue;
    const vendorId = (await readOrNull(`${base}/${render}/device/vendor`))?.trim().toLowerCase();
    const vendor = DRM_VENDOR[vendorId ?? ""];
    if (vendor === undefined) continue;
    const renderNode = await existing(root, [`/dev/dri/${render}`]);
    let devices: string[] = [];
    if (vendor === GPU_VENDOR.amd) {
      // ROCm needs the compute node /dev/kfd as well as the GPU's render node.
      if (renderNode.length === 1 && kfd.length === 1) devices = [...kfd, ...renderNode];
    } else if (renderNode.length === 1) {
      const cards = names.filter((n) => n.startsWith("card")).map((n) => `/dev/dri/${n}`);
      devices = [...renderNode, ...await existing(root, cards)];
    }
    out.push({ vendor, uuid: "", pciBusId: pci, minor: null, model: "", devices });
  }
  return out;
}

async function isExecutable(path: string): Promise<boolean> {
  const st = await statOrNull(path);
  return st !== null && st.isFile && ((st.mode ?? 0) & 0o111) !== 0;
}

/**
 * The first executable `name` in the directories of `path` (then `extra`), as a host path under
 * `root`; null when there is none. Relative PATH entries are ignored.
 */
export async function lookPath(
  name: string,
  path: string,
  root = "/",
  extra: readonly string[] = [],
): Promise<string | null> {
  for (const dir of [...path.split(":"), ...extra]) {
    if (!dir.startsWith("/")) continue;
    const candidate = underRoot(root, `${dir.replace(/\/+$/, "")}/${name}`);
    if (await isExecutable(candidate)) return candidate;
  }
  return null;
}

/**
 * NVIDIA's user-space driver files: `/usr/local/nvidia` whole when present (lib64/ and bin/),
 * else each driver library found in the usual lib directories (first directory wins per file
 * name) under `/usr/local/cumulus-driver/lib` and `nvidia-smi` under `.../bin`.
 */
export async function findDriverFiles(root: string): Promise<DriverFiles> {
  const nvidia = await statOrNull(underRoot(root, NVIDIA_DIR));
  if (nvidia?.isDirectory) {
    const pathEnv: Record<string, string[]> = {};
    if ((await statOrNull(underRoot(root, `${NVIDIA_DIR}/lib64`)))?.isDirectory) {
      pathEnv.LD_LIBRARY_PATH = [`${NVIDIA_DIR}/lib64`];
    }
    if ((await statOrNull(underRoot(root, `${NVIDIA_DIR}/bin`)))?.isDirectory) {
      pathEnv.PATH = [`${NVIDIA_DIR}/bin`];
    }
    return {
      mounts: [{ source: underRoot(root, NVIDIA_DIR), destination: NVIDIA_DIR }],
      pathEnv,
    };
  }
  const libs = new Map<string, string>();
  const pattern = new RegExp(
    `^(${DRIVER_LIBS.map((l) => l.replaceAll(".", "\\.")).join("|")})(\\.[0-9]+)*$`,
  );
  for (const dir of LIB_DIRS) {
    for (const name of await listDir(underRoot(root, dir))) {
      if (!pattern.test(name) || libs.has(name)) continue;
      // stat follows symlinks: a dangling link is no library.
      const st = await statOrNull(underRoot(root, `${dir}/${name}`));
      if (st?.isFile) libs.set(name, `${dir}/${name}`);
    }
  }
  const mounts: GrantMount[] = [...libs.entries()].sort(([a], [b]) => a < b ? -1 : 1)
    .map(([name, path]) => ({
      source: underRoot(root, path),
      destination: `${DRIVER_DIR}/lib/${name}`,
    }));
  const pathEnv: Record<string, string[]> = {};
  if (mounts.length > 0) pathEnv.LD_LIBRARY_PATH = [`${DRIVER_DIR}/lib`];
  if ((await statOrNull(underRoot(root, "/usr/bin/nvidia-smi")))?.isFile) {
    mounts.push({
      source: underRoot(root, "/usr/bin/nvidia-smi"),
      destination: `${DRIVER_DIR}/bin/nvidia-smi`,
    });
    pathEnv.PATH = [`${DRIVER_DIR}/bin`];
  }
  return { mounts, pathEnv };
}

/**
 * Reads the host's GPUs, driver files, toolkit and MPS under `opts.root`.
 * @example
 * const host = await discoverHostGpus({ root: "/", path: Deno.env.get("PATH") ?? "" });
 */
export async function discoverHostGpus(opts: DiscoverOptions = {}): Promise<HostGpus> {
  const root = opts.root ?? "/";
  const path = opts.path ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  const gpus = [...await nvidiaGpus(root), ...await drmGpus(root)]
    .sort((a, b) => a.pciBusId < b.pciBusId ? -1 : a.pciBusId > b.pciBusId ? 1 : 0);
  const hasNvidia = gpus.some((g) => g.vendor === GPU_VENDOR.nvidia);
  const toolkit = hasNvidia && await lookPath("nvidia-container-runtime", path, root) !== null;
  let mpsControl: string | null = null;
  if (hasNvidia) {
    mpsControl = opts.mpsControl
      ? (await isExecutable(opts.mpsControl) ? opts.mpsControl : null)
      : await lookPath("nvidia-cuda-mps-control", path, root, MPS_EXTRA_DIRS);
  }
  const driver = hasNvidia && !toolkit ? await findDriverFiles(root) : { mounts: [], pathEnv: {} };
  return { root, gpus, driver, toolkit, mpsControl };
}

/**
 * The worker's access kind: that of the first vendor (NVIDIA, then AMD, then Intel) with a
 * GPU that a Chronos device maps to and that has its device nodes; "none" otherwise.
 */
export function accessOf(host: HostGpus, mapped: Iterable<PhysicalGpu>): GpuAccess {
  const vendors = new Set<GpuVendor>();
  for (const g of mapped) if (g.devices.length > 0) vendors.add(g.vendor);
  if (vendors.has(GPU_VENDOR.nvidia)) {
    return host.toolkit ? GPU_ACCESS.nvidiaToolkit : GPU_ACCESS.nvidia;
  }
  if (vendors.has(GPU_VENDOR.amd)) return GPU_ACCESS.amd;
  if (vendors.has(GPU_VENDOR.intel)) return GPU_ACCESS.intel;
  return GPU_ACCESS.none;
}
