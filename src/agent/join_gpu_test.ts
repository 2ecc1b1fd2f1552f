import assert from "node:assert/strict";
import { writeDrm, writeNvidia } from "./_gpu_fixtures.ts";
import { GPU_VENDOR, type PhysicalGpu } from "./gpu_map.ts";
import { JoinError } from "./join_error.ts";
import { findGpus, gpuAgentEnv, gpusOf, withGpuRuntime } from "./join_gpu.ts";

const ENTRY = {
  wrapper: "/opt/cumulus/bin/cumulus-gpu-runc",
  grantsDir: "/run/cumulus/gpu-grants",
  downstream: "/usr/bin/runc",
};
const RUNTIME = {
  path: ENTRY.wrapper,
  runtimeArgs: ["--cumulus-grants=/run/cumulus/gpu-grants", "--cumulus-runc=/usr/bin/runc"],
};

Deno.test("withGpuRuntime() merges the wrapper into daemon.json, keeping the rest", () => {
  const table: [string, string | null, Record<string, unknown>][] = [
    ["no file", null, {}],
    ["an empty file", "", {}],
    ["blank", "  \n", {}],
    [
      "other settings and runtimes",
      JSON.stringify({
        "log-driver": "journald",
        runtimes: { nvidia: { path: "nvidia-container-runtime" } },
      }),
      { "log-driver": "journald", runtimes: { nvidia: { path: "nvidia-container-runtime" } } },
    ],
    [
      "an older entry and another default runtime",
      JSON.stringify({
        "default-runtime": "runc",
        "no-new-privileges": false,
        runtimes: { cumulus: { path: "/old/cumulus-gpu-runc" } },
      }),
      {},
    ],
  ];
  for (const [name, current, kept] of table) {
    const text = withGpuRuntime(current, ENTRY);
    assert.ok(text !== null, name);
    assert.ok(text.endsWith("}\n"), name);
    const cfg = JSON.parse(text);
    assert.equal(cfg["default-runtime"], "cumulus", name);
    assert.equal(cfg["no-new-privileges"], true, name);
    assert.deepEqual(cfg.runtimes.cumulus, RUNTIME, name);
    for (const [k, v] of Object.entries(kept)) {
      if (k === "runtimes") {
        for (const [rk, rv] of Object.entries(v as object)) {
          assert.deepEqual(cfg.runtimes[rk], rv, name);
        }
      } else {
        assert.deepEqual(cfg[k], v, name);
      }
    }
    // Applied twice: nothing more to do.
    assert.equal(withGpuRuntime(text, ENTRY), null, `${name}: a second merge changes nothing`);
  }
});

Deno.test("withGpuRuntime() leaves a config that has it, however formatted; else rewrites", () => {
  // As setup-worker.sh's python writes it (sorted keys, other formatting).
  const python = `{"default-runtime": "cumulus", "no-new-privileges": true, "runtimes": ` +
    `{"cumulus": {"runtimeArgs": ["--cumulus-grants=/run/cumulus/gpu-grants", ` +
    `"--cumulus-runc=/usr/bin/runc"], "path": "/opt/cumulus/bin/cumulus-gpu-runc"}}}`;
  assert.equal(withGpuRuntime(python, ENTRY), null);
  const table: [string, typeof ENTRY][] = [
    ["another downstream", { ...ENTRY, downstream: "/usr/bin/nvidia-container-runtime" }],
    ["another grants dir", { ...ENTRY, grantsDir: "/srv/grants" }],
    ["another wrapper", { ...ENTRY, wrapper: "/usr/local/bin/cumulus-gpu-runc" }],
  ];
  for (const [name, entry] of table) {
    const text = withGpuRuntime(python, entry);
    assert.ok(text !== null, name);
    assert.equal(JSON.parse(text).runtimes.cumulus.path, entry.wrapper, name);
    assert.ok(
      JSON.parse(text).runtimes.cumulus.runtimeArgs.includes(`--cumulus-runc=${entry.downstream}`),
      name,
    );
  }
  const noNnp = JSON.stringify({ ...JSON.parse(python), "no-new-privileges": false });
  assert.notEqual(withGpuRuntime(noNnp, ENTRY), null);
});

Deno.test("withGpuRuntime() refuses a daemon.json it cannot merge into", () => {
  const table: [string, RegExp][] = [
    ["{", /\/x\/daemon\.json is not valid JSON/],
    ["[]", /not a JSON object/],
    ["42", /not a JSON object/],
    ["null", /not a JSON object/],
    ['{"runtimes": []}', /"runtimes" is not a JSON object/],
    ['{"runtimes": "runc"}', /"runtimes" is not a JSON object/],
  ];
  for (const [text, re] of table) {
    assert.throws(
      () => withGpuRuntime(text, ENTRY, "/x/daemon.json"),
      (e: unknown) => e instanceof JoinError && e.failure === "local" && re.test(e.message),
      text,
    );
  }
});

function gpu(vendor: PhysicalGpu["vendor"], pci: string): PhysicalGpu {
  return { vendor, uuid: "", pciBusId: pci, minor: null, model: "", devices: [] };
}

Deno.test("gpusOf() picks NVIDIA, then AMD, then Intel, and counts that vendor's GPUs", () => {
  const table: [string, PhysicalGpu[], ReturnType<typeof gpusOf>][] = [
    ["none", [], null],
    ["one intel", [gpu("intel", "a")], { vendor: GPU_VENDOR.intel, count: 1 }],
    ["two amd", [gpu("amd", "a"), gpu("amd", "b")], { vendor: GPU_VENDOR.amd, count: 2 }],
    [
      "nvidia before amd and intel",
      [gpu("amd", "a"), gpu("nvidia", "b"), gpu("intel", "c"), gpu("nvidia", "d")],
      { vendor: GPU_VENDOR.nvidia, count: 2 },
    ],
    ["amd before intel", [gpu("intel", "a"), gpu("amd", "b")], {
      vendor: GPU_VENDOR.amd,
      count: 1,
    }],
  ];
  for (const [name, gpus, want] of table) assert.deepEqual(gpusOf(gpus), want, name);
});

Deno.test("findGpus() reads GPUs under a fixture root (CUMULUS_GPU_ROOT)", async () => {
  const base = await Deno.makeTempDir({ prefix: "join-gpu-" });
  try {
    const table: [string, (root: string) => Promise<void>, ReturnType<typeof gpusOf>][] = [
      ["an empty root", () => Promise.resolve(), null],
      [
        "two NVIDIA GPUs",
        (r) =>
          writeNvidia(r, [{ bus: "0000:17:00.0", minor: 0, k: 1 }, {
            bus: "0000:65:00.0",
            minor: 1,
            k: 2,
          }]),
        { vendor: GPU_VENDOR.nvidia, count: 2 },
      ],
      [
        "an NVIDIA GPU without its device node (still found)",
        (r) => writeNvidia(r, [{ bus: "0000:17:00.0", minor: 0, k: 1, node: false }]),
        { vendor: GPU_VENDOR.nvidia, count: 1 },
      ],
      [
        "an AMD GPU",
        (r) => writeDrm(r, [{ pci: "0000:03:00.0", vendorId: "0x1002", render: 128, card: 0 }]),
        { vendor: GPU_VENDOR.amd, count: 1 },
      ],
      [
        "an Intel GPU",
        (r) =>
          writeDrm(r, [{ pci: "0000:00:02.0", vendorId: "0x8086", render: 128, card: 0 }], false),
        { vendor: GPU_VENDOR.intel, count: 1 },
      ],
      [
        "a render node of another vendor (a VM's virtio-gpu)",
        (r) =>
          writeDrm(r, [{ pci: "0000:00:01.0", vendorId: "0x1af4", render: 128, card: 0 }], false),
        null,
      ],
    ];
    let i = 0;
    for (const [name, write, want] of table) {
      const root = `${base}/${i++}`;
      await Deno.mkdir(root);
      await write(root);
      assert.deepEqual(await findGpus(root), want, name);
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("gpuAgentEnv() names the grants and MPS directories the agent and wrapper share", () => {
  assert.deepEqual(gpuAgentEnv("/run/cumulus"), [
    "CUMULUS_GPU_GRANTS_DIR=/run/cumulus/gpu-grants",
    "CUMULUS_MPS_DIR=/run/cumulus/mps",
  ]);
});
