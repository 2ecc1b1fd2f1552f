import assert from "node:assert/strict";
import { fixtureUuid } from "./_gpu_fixtures.ts";
import type { HostGpus } from "./gpu_inventory.ts";
import type { PhysicalGpu } from "./gpu_map.ts";
import {
  buildGrant,
  type GpuGrant,
  type GrantInput,
  grantJobId,
  listGrantIds,
  readGrant,
  removeGrant,
  staleGrants,
  writeGrant,
} from "./grants.ts";

const NVIDIA: PhysicalGpu = {
  vendor: "nvidia",
  uuid: fixtureUuid(0),
  pciBusId: "0000:19:00.0",
  minor: 0,
  model: "NVIDIA H100 80GB HBM3",
  devices: ["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"],
};
const AMD: PhysicalGpu = {
  vendor: "amd",
  uuid: "",
  pciBusId: "0000:03:00.0",
  minor: null,
  model: "",
  devices: ["/dev/kfd", "/dev/dri/renderD128"],
};
const HOST: Pick<HostGpus, "root" | "toolkit" | "driver"> = {
  root: "/",
  toolkit: false,
  driver: {
    mounts: [{ source: "/usr/local/nvidia", destination: "/usr/local/nvidia" }],
    pathEnv: { LD_LIBRARY_PATH: ["/usr/local/nvidia/lib64"], PATH: ["/usr/local/nvidia/bin"] },
  },
};
const GIB = 2 ** 30;
const PIPE = `/run/cumulus/mps/${fixtureUuid(0)}/pipe`;

function input(over: Partial<GrantInput> = {}): GrantInput {
  return {
    chronosJobId: "j-0123456789ab",
    partition: { id: "p-0123456789ab", device: 0, memory: 0.25, memoryBytes: 20 * GIB },
    gpu: NVIDIA,
    host: HOST,
    mpsPipeDir: null,
    ...over,
  };
}

const NV_DEVICES = NVIDIA.devices.map((path) => ({ path }));
const GPU0: GpuGrant["gpu"] = {
  vendor: "nvidia",
  index: 0,
  uuid: fixtureUuid(0),
  pciBusId: "0000:19:00.0",
};

Deno.test("buildGrant() writes the contract's shape for each set-up", () => {
  const cases: { name: string; input: GrantInput; want: Partial<GpuGrant> }[] = [
    {
      name: "fractional NVIDIA under MPS, with a compute share",
      input: input({ mpsPipeDir: PIPE, computeShare: 40 }),
      want: {
        devices: NV_DEVICES,
        mounts: [
          { source: "/usr/local/nvidia", destination: "/usr/local/nvidia" },
          { source: PIPE, destination: PIPE, writable: true },
        ],
        env: {
          CUMULUS_GPU_MEMORY_BYTES: String(20 * GIB),
          CUDA_MPS_PIPE_DIRECTORY: PIPE,
          CUDA_MPS_PINNED_DEVICE_MEM_LIMIT: "0=20480M",
          CUDA_MPS_ACTIVE_THREAD_PERCENTAGE: "40",
        },
        hostIpc: true,
      },
    },
    {
      name: "a whole NVIDIA GPU of a group: no MPS, the Cumulus job id without :g<k>",
      input: input({
        chronosJobId: "j-0123456789ab:g1",
        partition: { id: "p-00000000000a", device: 3, memory: 1, memoryBytes: 80 * GIB },
      }),
      want: {
        jobId: "j-0123456789ab",
        partitionId: "p-00000000000a",
        gpu: { ...GPU0, index: 3 },
        devices: NV_DEVICES,
        mounts: [{ source: "/usr/local/nvidia", destination: "/usr/local/nvidia" }],
        env: { CUMULUS_GPU_MEMORY_BYTES: String(80 * GIB) },
        hostIpc: false,
      },
    },
    {
      name: "nvidia-container-toolkit: no devices, no driver mounts, MPS pipe still mounted",
      input: input({ host: { ...HOST, toolkit: true }, mpsPipeDir: PIPE }),
      want: {
        devices: [],
        mounts: [{ source: PIPE, destination: PIPE, writable: true }],
        pathEnv: {},
        hostIpc: true,
      },
    },
    {
      name: "AMD: its nodes only; a compute share without MPS is dropped",
      input: input({ gpu: AMD, computeShare: 50 }),
      want: {
        gpu: { vendor: "amd", index: 0, uuid: "", pciBusId: "0000:03:00.0" },
        devices: [{ path: "/dev/kfd" }, { path: "/dev/dri/renderD128" }],
        mounts: [],
        env: { CUMULUS_GPU_MEMORY_BYTES: String(20 * GIB) },
        pathEnv: {},
        hostIpc: false,
      },
    },
    {
      name: "a test root: nodes are stat'ed under it",
      input: input({ gpu: AMD, host: { ...HOST, root: "/tmp/fx" } }),
      want: {
        devices: [
          { path: "/dev/kfd", hostPath: "/tmp/fx/dev/kfd" },
          { path: "/dev/dri/renderD128", hostPath: "/tmp/fx/dev/dri/renderD128" },
        ],
      },
    },
  ];
  for (const c of cases) {
    const g = buildGrant(c.input);
    assert.equal(g.version, 1, c.name);
    assert.deepEqual(
      { ...g, ...c.want },
      g,
      `${c.name}: ${JSON.stringify(g, null, 1)}`,
    );
  }
  const plain = buildGrant(input());
  assert.deepEqual(plain.gpu, GPU0);
  assert.equal(plain.jobId, "j-0123456789ab");
  assert.deepEqual(plain.pathEnv, HOST.driver.pathEnv);
  assert.notEqual(plain.pathEnv.PATH, HOST.driver.pathEnv.PATH, "copied, not shared");
});

Deno.test("grantJobId() strips only a group member's suffix", () => {
  assert.equal(grantJobId("j-0123456789ab"), "j-0123456789ab");
  assert.equal(grantJobId("j-0123456789ab:g7"), "j-0123456789ab");
  assert.equal(grantJobId("a:b"), "a:b");
});

Deno.test("writeGrant() writes atomically with mode 0600 in a 0700 directory; remove and list", async () => {
  const base = await Deno.makeTempDir({ prefix: "cumulus-grants-" });
  try {
    const dir = `${base}/run/cumulus/gpu-grants`;
    assert.deepEqual(await listGrantIds(dir), [], "no directory: no grants");
    const g = buildGrant(input({ mpsPipeDir: PIPE }));
    const path = await writeGrant(dir, g);
    assert.equal(path, `${dir}/p-0123456789ab.json`);
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(`${base}/run/cumulus`)).mode! & 0o700, 0o700);
    assert.notEqual((await Deno.stat(`${base}/run/cumulus`)).mode! & 0o055, 0, "parents as usual");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), g);
    // Rewriting (an idempotent create) replaces it; a loose directory is tightened.
    await Deno.chmod(dir, 0o755);
    await writeGrant(dir, { ...g, env: { ...g.env, X: "1" } });
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assert.equal((await readGrant(dir, g.partitionId))?.env.X, "1");
    // Only <partition id>.json files count.
    await Deno.writeTextFile(`${dir}/.p-0123456789ab.1.x.tmp`, "");
    await Deno.writeTextFile(`${dir}/notes.json`, "");
    await writeGrant(dir, { ...g, partitionId: "p-00000000000f" });
    assert.deepEqual(await listGrantIds(dir), ["p-00000000000f", "p-0123456789ab"]);
    assert.equal(await removeGrant(dir, "p-0123456789ab"), true);
    assert.equal(await removeGrant(dir, "p-0123456789ab"), false);
    assert.equal(await readGrant(dir, "p-0123456789ab"), null);
    await assert.rejects(removeGrant(dir, "../etc/passwd"), /not a partition id/);
    await assert.rejects(
      writeGrant(`${path.replace("p-0123456789ab", "p-00000000000f")}/sub`, g),
      /grants directory/,
      "a file where the directory should be",
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("staleGrants() keeps the grants of live partitions", () => {
  assert.deepEqual(staleGrants(["p-1", "p-2", "p-3"], ["p-2", "p-9"]), ["p-1", "p-3"]);
  assert.deepEqual(staleGrants([], ["p-1"]), []);
});
