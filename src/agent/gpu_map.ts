/**
 * Which physical GPU each Chronos (OpenCL) device is: a pure function of Chronos's device list and
 * the GPUs found on the host (src/agent/gpu_inventory.ts). By PCI address when Chronos reports one
 * (or the operator pins one with `CUMULUS_GPU_MAP`), else by order within a vendor. A wrong answer
 * would hand a job someone else's GPU, so an ambiguous order (as many OpenCL devices as GPUs of
 * that vendor, or none) maps nothing.
 * @module
 */

/** GPU vendors whose device sets Cumulus knows. */
export const GPU_VENDOR = {
  nvidia: "nvidia",
  amd: "amd",
  intel: "intel",
} as const;

/** A GPU vendor: `"nvidia"`, `"amd"` or `"intel"`. */
export type GpuVendor = typeof GPU_VENDOR[keyof typeof GPU_VENDOR];

/** One physical GPU of the host, as found under `/proc` and `/sys`. */
export interface PhysicalGpu {
  /** Vendor. */
  vendor: GpuVendor;
  /** NVIDIA's `GPU-…` UUID; "" for AMD and Intel. */
  uuid: string;
  /** Normalised PCI address, e.g. `0000:19:00.0` (see {@link normalizePciBusId}). */
  pciBusId: string;
  /** NVIDIA's device minor (`/dev/nvidia<minor>`); null for other vendors. */
  minor: number | null;
  /** Model name ("" when the host does not say). */
  model: string;
  /**
   * Device nodes a job needs for this GPU, as paths inside the container (the same as on the
   * host). Empty when the GPU's own node is missing: the GPU exists but cannot be handed out.
   */
  devices: string[];
}

/** What the mapping reads of a Chronos device ({@link DeviceInfo} satisfies it). */
export interface ChronosDeviceView {
  /** Chronos device index. */
  index: number;
  /** OpenCL vendor, e.g. "NVIDIA Corporation". */
  vendor: string;
  /** OpenCL platform, e.g. "NVIDIA CUDA". */
  platform: string;
  /** "GPU", "CPU", "ACCELERATOR" or "OTHER". */
  type: string;
  /** PCI address when Chronos reports one; absent or "" otherwise. */
  pciBusId?: string;
}

const PCI_RE = /^([0-9a-f]{1,8}):([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$/i;
const PCI_NO_DOMAIN_RE = /^([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$/i;

/**
 * A PCI address in one spelling: lower case, a 4-digit domain (`00000000:19:00.0`, as
 * `nvidia-smi` writes it, and `19:00.0` both give `0000:19:00.0`). Null when `text` is not one.
 * @example
 * normalizePciBusId("00000000:19:00.0"); // "0000:19:00.0"
 */
export function normalizePciBusId(text: string): string | null {
  const t = text.trim();
  let m = PCI_RE.exec(t);
  let parts: string[];
  if (m) parts = [m[1], m[2], m[3], m[4]];
  else if ((m = PCI_NO_DOMAIN_RE.exec(t))) parts = ["0", m[1], m[2], m[3]];
  else return null;
  const hex = (s: string, width: number) => parseInt(s, 16).toString(16).padStart(width, "0");
  return `${hex(parts[0], 4)}:${hex(parts[1], 2)}:${hex(parts[2], 2)}.${parts[3]}`;
}

/**
 * The GPU vendor of an OpenCL device, from its vendor and platform names; null for CPU and
 * other devices (PoCL reports CPUs as "AuthenticAMD" or "GenuineIntel").
 */
export function openClVendor(device: ChronosDeviceView): GpuVendor | null {
  if (device.type !== "GPU" && device.type !== "ACCELERATOR") return null;
  const text = `${device.vendor} ${device.platform}`;
  if (/nvidia/i.test(text)) return GPU_VENDOR.nvidia;
  if (/advanced micro devices|\bamd\b/i.test(text)) return GPU_VENDOR.amd;
  if (/intel/i.test(text)) return GPU_VENDOR.intel;
  return null;
}

/**
 * Maps each Chronos device to the physical GPU it is, or to nothing.
 *
 * 1. `pinned` (the operator's `CUMULUS_GPU_MAP`: device index → PCI address) wins;
 * 2. else the PCI address Chronos reports, compared after {@link normalizePciBusId};
 * 3. else, for devices that report no address (or one that names no GPU here), by order: the k-th such GPU-type device of a
 *    vendor is the k-th not yet mapped GPU of that vendor by PCI address, but only when the two
 *    counts are equal (otherwise which is which cannot be known, and nothing is mapped).
 *
 * A GPU is mapped at most once. CPU devices (PoCL) map to nothing.
 * @param devices Chronos's devices.
 * @param gpus The host's GPUs (any order).
 * @param pinned Device index → PCI address set by the operator.
 * @returns Device index → GPU, for the devices that map to one.
 * @example
 * mapDevicesToGpus([{ index: 0, vendor: "NVIDIA Corporation", platform: "NVIDIA CUDA",
 *   type: "GPU" }], gpus).get(0)?.uuid;
 */
export function mapDevicesToGpus(
  devices: readonly ChronosDeviceView[],
  gpus: readonly PhysicalGpu[],
  pinned: ReadonlyMap<number, string> = new Map(),
): Map<number, PhysicalGpu> {
  const byBus = new Map<string, PhysicalGpu>();
  for (const g of gpus) byBus.set(g.pciBusId, g);
  const out = new Map<number, PhysicalGpu>();
  const used = new Set<PhysicalGpu>();
  const claim = (index: number, gpu: PhysicalGpu | undefined) => {
    if (gpu === undefined || used.has(gpu)) return;
    used.add(gpu);
    out.set(index, gpu);
  };
  // Pins first, so an operator's pin is never taken by another device's reported address.
  for (const d of devices) {
    const pin = pinned.get(d.index);
    if (pin !== undefined) claim(d.index, byBus.get(normalizePciBusId(pin) ?? ""));
  }
  const unaddressed: ChronosDeviceView[] = [];
  for (const d of devices) {
    if (pinned.has(d.index)) continue;
    const reported = d.pciBusId ? normalizePciBusId(d.pciBusId) : null;
    // An address that names no GPU of this host is no address at all (a driver's OpenCL may
    // encode it differently from the kernel's): order decides, under the same equal-count rule.
    if (reported !== null && byBus.has(reported)) claim(d.index, byBus.get(reported));
    else unaddressed.push(d);
  }
  for (const vendor of Object.values(GPU_VENDOR)) {
    const devs = unaddressed.filter((d) => openClVendor(d) === vendor)
      .sort((a, b) => a.index - b.index);
    const free = gpus.filter((g) => g.vendor === vendor && !used.has(g))
      .sort((a, b) => a.pciBusId < b.pciBusId ? -1 : a.pciBusId > b.pciBusId ? 1 : 0);
    if (devs.length === 0 || devs.length !== free.length) continue;
    devs.forEach((d, k) => claim(d.index, free[k]));
  }
  return out;
}
