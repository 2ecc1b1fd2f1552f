import assert from "node:assert/strict";
import { fixtureUuid, writeDrm, writeExecutable, writeNvidia } from "./_gpu_fixtures.ts";
import {
  accessOf,
  discoverHostGpus,
  findDriverFiles,
  lookPath,
  parseNvidiaInformation,
} from "./gpu_inventory.ts";

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "cumulus-gpu-root-" });
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("parseNvidiaInformation() reads tab-separated fields whose values hold colons", () => {
  const info = parseNvidiaInformation(
    "Model: \t\t NVIDIA H100 80GB HBM3\nGPU UUID: \t GPU-8f0c1d2e-aaaa-bbbb-cccc-0123456789ab\n" +
      "Bus Location: \t 00000000:19:00.0\nDevice Minor: \t 3\n",
  );
  assert.deepEqual(info, {
    model: "NVIDIA H100 80GB HBM3",
    uuid: "GPU-8f0c1d2e-aaaa-bbbb-cccc-0123456789ab",
    pciBusId: "0000:19:00.0",
    minor: 3,
  });
  assert.deepEqual(parseNvidiaInformation("GPU UUID: \t ???\nDevice Minor: x\n"), {
    model: "",
    uuid: "",
    pciBusId: "",
    minor: null,
  });
});

Deno.test("discoverHostGpus() finds NVIDIA GPUs with their own and the shared nodes", async () => {
  await withRoot(async (root) => {
    await writeNvidia(root, [
      { bus: "0000:3b:00.0", minor: 1, k: 1 },
      { bus: "0000:19:00.0", minor: 0, k: 0 },
      { bus: "0000:5e:00.0", minor: 2, k: 2, node: false },
    ], ["/dev/nvidiactl", "/dev/nvidia-uvm"]);
    const host = await discoverHostGpus({ root, path: "/usr/bin" });
    assert.deepEqual(host.gpus.map((g) => [g.pciBusId, g.uuid, g.minor, g.devices]), [
      ["0000:19:00.0", fixtureUuid(0), 0, ["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"]],
      ["0000:3b:00.0", fixtureUuid(1), 1, ["/dev/nvidia1", "/dev/nvidiactl", "/dev/nvidia-uvm"]],
      // Its own node is missing: the GPU is known (the order mapping needs it) but not handed out.
      ["0000:5e:00.0", fixtureUuid(2), 2, []],
    ]);
    assert.equal(host.gpus[0].model, "NVIDIA H100 80GB HBM3");
    assert.equal(host.toolkit, false);
    assert.equal(host.mpsControl, null);
    assert.equal(accessOf(host, host.gpus), "nvidia");
    assert.equal(accessOf(host, [host.gpus[2]]), "none", "a GPU without nodes gives no access");
  });
});

Deno.test("discoverHostGpus() finds AMD (kfd + render node) and Intel (render + card) GPUs through sysfs symlinks", async () => {
  await withRoot(async (root) => {
    await writeDrm(root, [
      { pci: "0000:03:00.0", vendorId: "0x1002", render: 128, card: 0 },
      { pci: "0000:00:02.0", vendorId: "0x8086", render: 129, card: 1 },
      { pci: "0000:07:00.0", vendorId: "0x1af4", render: 130 }, // virtio: not a GPU we know
    ]);
    const host = await discoverHostGpus({ root, path: "" });
    assert.deepEqual(host.gpus.map((g) => [g.vendor, g.pciBusId, g.uuid, g.devices]), [
      ["intel", "0000:00:02.0", "", ["/dev/dri/renderD129", "/dev/dri/card1"]],
      ["amd", "0000:03:00.0", "", ["/dev/kfd", "/dev/dri/renderD128"]],
    ]);
    assert.deepEqual(host.driver, { mounts: [], pathEnv: {} }, "no NVIDIA driver files");
    assert.equal(accessOf(host, host.gpus), "amd");
    assert.equal(accessOf(host, [host.gpus[0]]), "intel");
  });
  await withRoot(async (root) => {
    await writeDrm(root, [{ pci: "0000:03:00.0", vendorId: "0x1002", render: 128 }], false);
    const host = await discoverHostGpus({ root, path: "" });
    assert.deepEqual(host.gpus[0].devices, [], "AMD without /dev/kfd cannot compute");
  });
});

Deno.test("discoverHostGpus() on a host without GPUs finds nothing and needs nothing", async () => {
  await withRoot(async (root) => {
    const host = await discoverHostGpus({ root, path: "/usr/bin" });
    assert.deepEqual(host, {
      root,
      gpus: [],
      driver: { mounts: [], pathEnv: {} },
      toolkit: false,
      mpsControl: null,
    });
    assert.equal(accessOf(host, []), "none");
  });
});

Deno.test("findDriverFiles() mounts /usr/local/nvidia whole when present", async () => {
  await withRoot(async (root) => {
    await writeExecutable(root, "/usr/local/nvidia/bin/nvidia-smi");
    await Deno.mkdir(`${root}/usr/local/nvidia/lib64`, { recursive: true });
    // Libraries elsewhere are ignored then.
    await writeExecutable(root, "/usr/lib/x86_64-linux-gnu/libcuda.so.1");
    assert.deepEqual(await findDriverFiles(root), {
      mounts: [{ source: `${root}/usr/local/nvidia`, destination: "/usr/local/nvidia" }],
      pathEnv: { LD_LIBRARY_PATH: ["/usr/local/nvidia/lib64"], PATH: ["/usr/local/nvidia/bin"] },
    });
  });
});

Deno.test("findDriverFiles() mounts each driver library and nvidia-smi, first directory wins", async () => {
  await withRoot(async (root) => {
    const lib = "/usr/lib/x86_64-linux-gnu";
    await writeExecutable(root, `${lib}/libcuda.so.580.95.05`);
    await Deno.symlink("libcuda.so.580.95.05", `${root}${lib}/libcuda.so.1`);
    await Deno.symlink("libcuda.so.1", `${root}${lib}/libcuda.so`);
    await Deno.symlink("libnvidia-ml.so.580.95.05", `${root}${lib}/libnvidia-ml.so.1`); // dangling
    await writeExecutable(root, `${lib}/libnvidia-ptxjitcompiler.so.1`);
    await writeExecutable(root, `${lib}/libcudart.so.12`); // the toolkit's, not the driver's
    await writeExecutable(root, `${lib}/libcuda.so.1.bak`);
    await writeExecutable(root, "/usr/lib64/libcuda.so.1"); // shadowed by the first directory
    await writeExecutable(root, "/usr/lib64/libnvidia-nvvm.so.4");
    await writeExecutable(root, "/usr/bin/nvidia-smi");
    const d = await findDriverFiles(root);
    assert.deepEqual(d.mounts, [
      {
        source: `${root}${lib}/libcuda.so`,
        destination: "/usr/local/cumulus-driver/lib/libcuda.so",
      },
      {
        source: `${root}${lib}/libcuda.so.1`,
        destination: "/usr/local/cumulus-driver/lib/libcuda.so.1",
      },
      {
        source: `${root}${lib}/libcuda.so.580.95.05`,
        destination: "/usr/local/cumulus-driver/lib/libcuda.so.580.95.05",
      },
      {
        source: `${root}/usr/lib64/libnvidia-nvvm.so.4`,
        destination: "/usr/local/cumulus-driver/lib/libnvidia-nvvm.so.4",
      },
      {
        source: `${root}${lib}/libnvidia-ptxjitcompiler.so.1`,
        destination: "/usr/local/cumulus-driver/lib/libnvidia-ptxjitcompiler.so.1",
      },
      {
        source: `${root}/usr/bin/nvidia-smi`,
        destination: "/usr/local/cumulus-driver/bin/nvidia-smi",
      },
    ]);
    assert.deepEqual(d.pathEnv, {
      LD_LIBRARY_PATH: ["/usr/local/cumulus-driver/lib"],
      PATH: ["/usr/local/cumulus-driver/bin"],
    });
  });
});

Deno.test("discoverHostGpus() detects nvidia-container-toolkit and MPS on PATH; the toolkit mounts its own driver", async () => {
  await withRoot(async (root) => {
    await writeNvidia(root, [{ bus: "0000:19:00.0", minor: 0, k: 0 }]);
    await writeExecutable(root, "/usr/bin/nvidia-smi");
    await writeExecutable(root, "/opt/nv/bin/nvidia-container-runtime");
    await writeExecutable(root, "/usr/local/nvidia/bin/nvidia-cuda-mps-control");
    let host = await discoverHostGpus({ root, path: "/usr/bin" });
    assert.equal(host.toolkit, false);
    assert.equal(host.driver.mounts.length, 1);
    assert.equal(
      host.mpsControl,
      `${root}/usr/local/nvidia/bin/nvidia-cuda-mps-control`,
      "found where the H100 machine keeps it, after PATH",
    );
    host = await discoverHostGpus({ root, path: "relative/bin:/opt/nv/bin:/usr/bin" });
    assert.equal(host.toolkit, true);
    assert.deepEqual(host.driver, { mounts: [], pathEnv: {} });
    assert.equal(accessOf(host, host.gpus), "nvidia-toolkit");
    // An explicit control binary is used only when it is executable.
    const own = await writeExecutable(root, "/srv/mps-control");
    host = await discoverHostGpus({ root, path: "/usr/bin", mpsControl: own });
    assert.equal(host.mpsControl, own);
    await Deno.chmod(own, 0o644);
    host = await discoverHostGpus({ root, path: "/usr/bin", mpsControl: own });
    assert.equal(host.mpsControl, null);
  });
});

Deno.test("lookPath() takes the first executable and skips relative entries", async () => {
  await withRoot(async (root) => {
    await writeExecutable(root, "/b/tool");
    await writeExecutable(root, "/c/tool");
    await Deno.writeTextFile(`${root}/c/other`, "");
    assert.equal(await lookPath("tool", "a:/a:/b:/c", root), `${root}/b/tool`);
    assert.equal(await lookPath("other", "/c", root), null, "not executable");
    assert.equal(await lookPath("tool", "", root, ["/c/"]), `${root}/c/tool`);
  });
});
