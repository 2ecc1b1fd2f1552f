import assert from "node:assert/strict";
import {
  type ChronosDeviceView,
  mapDevicesToGpus,
  normalizePciBusId,
  openClVendor,
  type PhysicalGpu,
} from "./gpu_map.ts";

function gpu(vendor: PhysicalGpu["vendor"], pciBusId: string, uuid = ""): PhysicalGpu {
  return { vendor, uuid, pciBusId, minor: null, model: "", devices: ["/dev/x"] };
}

const NV = { vendor: "NVIDIA Corporation", platform: "NVIDIA CUDA", type: "GPU" };
const AMD = {
  vendor: "Advanced Micro Devices, Inc.",
  platform: "AMD Accelerated Parallel Processing",
  type: "GPU",
};
const INTEL = { vendor: "Intel(R) Corporation", platform: "Intel(R) OpenCL Graphics", type: "GPU" };
const POCL = { vendor: "AuthenticAMD", platform: "Portable Computing Language", type: "CPU" };

function dev(index: number, kind: Omit<ChronosDeviceView, "index">, pciBusId?: string) {
  return { index, ...kind, ...(pciBusId === undefined ? {} : { pciBusId }) };
}

Deno.test("normalizePciBusId() accepts NVIDIA's 8-digit domain, no domain and upper case", () => {
  const cases: [string, string | null][] = [
    ["0000:19:00.0", "0000:19:00.0"],
    ["00000000:19:00.0", "0000:19:00.0"],
    ["0000:1A:00.0", "0000:1a:00.0"],
    ["19:00.0", "0000:19:00.0"],
    [" 0001:c3:1f.7\n", "0001:c3:1f.7"],
    ["", null],
    ["0000:19:00", null],
    ["0000:19:00.8", null],
    ["pci-0000:19:00.0", null],
  ];
  for (const [text, want] of cases) assert.equal(normalizePciBusId(text), want, text);
});

Deno.test("openClVendor() names GPU vendors and leaves CPU devices out", () => {
  const cases: [Omit<ChronosDeviceView, "index">, string | null][] = [
    [NV, "nvidia"],
    [AMD, "amd"],
    [INTEL, "intel"],
    [POCL, null],
    [{ ...INTEL, type: "CPU" }, null],
    [
      { vendor: "NVIDIA Corporation", platform: "Portable Computing Language", type: "GPU" },
      "nvidia",
    ],
    [{ vendor: "Acme", platform: "Acme CL", type: "GPU" }, null],
  ];
  for (const [d, want] of cases) assert.equal(openClVendor({ index: 0, ...d }), want, d.vendor);
});

Deno.test("mapDevicesToGpus() maps by PCI address, pin, then order; never guesses", () => {
  const a = gpu("nvidia", "0000:19:00.0", "GPU-a");
  const b = gpu("nvidia", "0000:3b:00.0", "GPU-b");
  const r = gpu("amd", "0000:03:00.0");
  const i = gpu("intel", "0000:00:02.0");
  const cases: {
    name: string;
    devices: ChronosDeviceView[];
    gpus: PhysicalGpu[];
    pinned?: Map<number, string>;
    want: Record<number, PhysicalGpu>;
  }[] = [
    {
      name: "by reported address, in any spelling",
      devices: [dev(0, NV, "00000000:3B:00.0"), dev(1, NV, "0000:19:00.0")],
      gpus: [a, b],
      want: { 0: b, 1: a },
    },
    {
      name: "by order within a vendor, GPUs sorted by address",
      devices: [dev(0, POCL), dev(1, NV), dev(2, AMD), dev(3, NV)],
      gpus: [b, r, a],
      want: { 1: a, 2: r, 3: b },
    },
    {
      name: "the pin wins over the reported address and over order",
      devices: [dev(0, NV, "0000:19:00.0"), dev(1, POCL)],
      gpus: [a, b],
      pinned: new Map([[0, "0000:3b:00.0"], [1, "0000:19:00.0"]]),
      want: { 0: b, 1: a },
    },
    {
      // As on the H100 machine before Chronos read NVIDIA's slot id right (00:00.6 for 00:06.0).
      name: "a reported address of no GPU here falls back to order when the counts are equal",
      devices: [dev(0, NV, "0000:00:00.6")],
      gpus: [a],
      want: { 0: a },
    },
    {
      name: "... and maps nothing when they are not",
      devices: [dev(0, NV, "0000:99:00.0"), dev(1, NV, "0000:98:00.0")],
      gpus: [a],
      want: {},
    },
    {
      name: "unequal counts are ambiguous: nothing is mapped for that vendor",
      devices: [dev(0, NV), dev(1, NV), dev(2, INTEL)],
      gpus: [a, i],
      want: { 2: i },
    },
    {
      name: "order uses only the GPUs no address took",
      devices: [dev(0, NV, "0000:3b:00.0"), dev(1, NV)],
      gpus: [a, b],
      want: { 0: b, 1: a },
    },
    {
      name: "a GPU is mapped once",
      devices: [dev(0, NV, "0000:19:00.0"), dev(1, NV, "0000:19:00.0")],
      gpus: [a],
      want: { 0: a },
    },
    { name: "CPU-only worker", devices: [dev(0, POCL)], gpus: [], want: {} },
    { name: "GPUs but no GPU device in Chronos", devices: [dev(0, POCL)], gpus: [a], want: {} },
  ];
  for (const c of cases) {
    const got = mapDevicesToGpus(c.devices, c.gpus, c.pinned);
    assert.deepEqual(Object.fromEntries(got), c.want, c.name);
  }
});
