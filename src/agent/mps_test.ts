import assert from "node:assert/strict";
import { killStandIns, standInCalls, writeMpsStandIn } from "./_gpu_fixtures.ts";
import {
  type MpsAction,
  MpsControl,
  type MpsDaemonState,
  type MpsGpu,
  type MpsPartitionView,
  mpsPaths,
  planMps,
} from "./mps.ts";

const G1 = "GPU-11111111-0000-0000-0000-000000000000";
const G2 = "GPU-22222222-0000-0000-0000-000000000000";
const GPUS: MpsGpu[] = [{ uuid: G1, devices: [0] }, { uuid: G2, devices: [1] }];
const NOW = 100_000;

Deno.test("planMps() starts needed daemons and stops idle ones after the idle time", () => {
  const cases: {
    name: string;
    partitions: MpsPartitionView[];
    daemons: MpsDaemonState[];
    actions: MpsAction[];
    idle: Record<string, number | null>;
  }[] = [
    {
      name: "first fractional partition: start",
      partitions: [{ device: 0, memory: 0.5 }],
      daemons: [],
      actions: [{ kind: "start", uuid: G1 }],
      idle: { [G1]: null, [G2]: null },
    },
    {
      name: "a dead daemon while the GPU has fractional partitions: start again",
      partitions: [{ device: 1, memory: 0.25 }, { device: 1, memory: 0.25 }],
      daemons: [{ uuid: G2, alive: false, idleSinceMs: null }],
      actions: [{ kind: "start", uuid: G2 }],
      idle: { [G1]: null, [G2]: null },
    },
    {
      name: "running and needed: nothing",
      partitions: [{ device: 0, memory: 0.5 }],
      daemons: [{ uuid: G1, alive: true, idleSinceMs: NOW - 5_000 }],
      actions: [],
      idle: { [G1]: null, [G2]: null },
    },
    {
      name: "whole GPUs need no MPS; a running daemon starts its idle time",
      partitions: [{ device: 0, memory: 1 }],
      daemons: [{ uuid: G1, alive: true, idleSinceMs: null }],
      actions: [],
      idle: { [G1]: NOW, [G2]: null },
    },
    {
      name: "idle for less than the idle time: kept",
      partitions: [],
      daemons: [{ uuid: G1, alive: true, idleSinceMs: NOW - 29_999 }],
      actions: [],
      idle: { [G1]: NOW - 29_999, [G2]: null },
    },
    {
      name: "idle for the idle time: stopped",
      partitions: [{ device: 1, memory: 0.5 }],
      daemons: [
        { uuid: G1, alive: true, idleSinceMs: NOW - 30_000 },
        { uuid: G2, alive: true, idleSinceMs: null },
      ],
      actions: [{ kind: "stop", uuid: G1, idleMs: 30_000 }],
      idle: { [G1]: null, [G2]: null },
    },
    {
      name: "not running and not needed: nothing",
      partitions: [{ device: 7, memory: 0.5 }],
      daemons: [{ uuid: G1, alive: false, idleSinceMs: NOW - 60_000 }],
      actions: [],
      idle: { [G1]: null, [G2]: null },
    },
  ];
  for (const c of cases) {
    const plan = planMps(GPUS, c.partitions, c.daemons, NOW, 30_000);
    assert.deepEqual(plan.actions, c.actions, c.name);
    assert.deepEqual(Object.fromEntries(plan.idleSinceMs), c.idle, c.name);
  }
});

Deno.test("mpsPaths() refuses what is not a GPU UUID", () => {
  assert.deepEqual(mpsPaths("/run/cumulus/mps/", G1), {
    pipeDir: `/run/cumulus/mps/${G1}/pipe`,
    logDir: `/run/cumulus/mps/${G1}/log`,
    lockFile: `/run/cumulus/mps/${G1}/start.lock`,
  });
  assert.throws(() => mpsPaths("/m", "../x"), /not an NVIDIA GPU UUID/);
});

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-mps-" });
  try {
    await fn(dir);
  } finally {
    await killStandIns(`${dir}/mps`);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("MpsControl starts the daemon with exactly its argv and environment, once, and stops it", async () => {
  await withDir(async (dir) => {
    const standIn = await writeMpsStandIn(dir);
    const mps = new MpsControl({
      binary: standIn.binary,
      mpsDir: `${dir}/mps`,
      // A stray CUDA variable of the agent must not reach the daemon.
      env: {
        PATH: "/usr/bin:/bin",
        CUDA_MPS_PINNED_DEVICE_MEM_LIMIT: "0=1M",
        CUDA_VISIBLE_DEVICES: "3",
      },
    });
    const { pipeDir, logDir } = mps.paths(G1);
    assert.equal(await mps.alive(G1), false);
    assert.equal(await mps.ensure(G1), "started");
    assert.equal(await mps.alive(G1), true);
    assert.equal(await mps.ensure(G1), "running");
    assert.equal((await Deno.stat(logDir)).isDirectory, true);
    let calls = await standInCalls(standIn);
    assert.deepEqual(calls, [{
      what: "-d",
      env: {
        PATH: "/usr/bin:/bin",
        CUDA_VISIBLE_DEVICES: G1,
        CUDA_MPS_PIPE_DIRECTORY: pipeDir,
        CUDA_MPS_LOG_DIRECTORY: logDir,
      },
    }]);
    await mps.stop(G1);
    calls = await standInCalls(standIn);
    assert.equal(calls[1].what, `control quit ${pipeDir}`);
    assert.deepEqual(calls[1].env, {}, "quit is recorded without its environment");
    assert.equal(await mps.alive(G1), false);
    assert.equal(await mps.ensure(G1), "started", "a stopped daemon starts again");
  });
});

Deno.test("MpsControl counts a pid file of another program or a dead process as not running", async () => {
  await withDir(async (dir) => {
    const standIn = await writeMpsStandIn(dir);
    const mps = new MpsControl({ binary: standIn.binary, mpsDir: `${dir}/mps`, env: {} });
    const { pipeDir } = mps.paths(G2);
    await Deno.mkdir(pipeDir, { recursive: true });
    await Deno.writeTextFile(`${pipeDir}/nvidia-cuda-mps-control.pid`, `${Deno.pid}\n`);
    assert.equal(await mps.alive(G2), false, "this test's own pid is no MPS daemon");
    await Deno.writeTextFile(`${pipeDir}/nvidia-cuda-mps-control.pid`, "4194304\n");
    assert.equal(await mps.alive(G2), false);
    assert.equal(await mps.ensure(G2), "started", "the stale pid file is replaced");
    assert.equal(await mps.alive(G2), true);
  });
});

Deno.test("MpsControl.start fails clearly when the binary fails or the daemon never gets ready", async () => {
  await withDir(async (dir) => {
    const failing = await writeMpsStandIn(dir, { exitCode: 3 });
    let mps = new MpsControl({ binary: failing.binary, mpsDir: `${dir}/mps`, env: {} });
    await assert.rejects(
      mps.ensure(G1),
      /-d for GPU-1.* exited with 3 \(see .*\/log\/control\.log\)/,
    );
    const silent = await writeMpsStandIn(dir, { ready: false });
    mps = new MpsControl({
      binary: silent.binary,
      mpsDir: `${dir}/mps`,
      env: {},
      readyTimeoutMs: 150,
    });
    await assert.rejects(mps.start(G1), /was not ready within 150 ms/);
    mps = new MpsControl({ binary: `${dir}/missing`, mpsDir: `${dir}/mps`, env: {} });
    await assert.rejects(mps.start(G1), /mps: cannot start/);
  });
});
