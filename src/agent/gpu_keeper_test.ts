import assert from "node:assert/strict";
import { fixtureUuid, killStandIns, standInCalls, writeMpsStandIn } from "./_gpu_fixtures.ts";
import { Chronos } from "./chronos.ts";
import { GpuKeeper } from "./gpu_keeper.ts";
import { buildGrant, listGrantIds, writeGrant } from "./grants.ts";
import { MpsControl } from "./mps.ts";

const UUID = fixtureUuid(0);

Deno.test("GpuKeeper removes grants of gone partitions and runs MPS while a GPU has fractional partitions", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-keeper-" });
  const chronos = Chronos.open({ stateDir: `${dir}/state` });
  try {
    const grantsDir = `${dir}/grants`;
    const standIn = await writeMpsStandIn(dir);
    const mps = new MpsControl({ binary: standIn.binary, mpsDir: `${dir}/mps`, env: {} });
    const lines: string[] = [];
    const keeper = new GpuKeeper(chronos, {
      grantsDir,
      gpus: [{ uuid: UUID, devices: [0] }],
      mps,
      intervalMs: 10,
      idleStopMs: 0,
      log: (l) => lines.push(l),
    });
    const live = await chronos.create({ device: 0, memory: 0.5, duration: 60, jobId: "j-1" });
    const gone = await chronos.create({ device: 0, memory: 0.25, duration: 60, jobId: "j-2" });
    for (const p of [live, gone]) {
      await writeGrant(
        grantsDir,
        buildGrant({
          chronosJobId: p.jobId,
          partition: p,
          gpu: {
            vendor: "nvidia",
            uuid: UUID,
            pciBusId: "0000:19:00.0",
            minor: 0,
            model: "",
            devices: [],
          },
          host: { root: "/", toolkit: false, driver: { mounts: [], pathEnv: {} } },
          mpsPipeDir: mps.paths(UUID).pipeDir,
        }),
      );
    }
    await chronos.release(gone.id);

    await keeper.tick();
    assert.deepEqual(await listGrantIds(grantsDir), [live.id]);
    assert.equal(await mps.alive(UUID), true, "started: the GPU has a fractional partition");
    assert.ok(lines.some((l) => l.includes(`removed the grant of ${gone.id}`)), lines.join("\n"));

    // The daemon dies: the next look starts it again.
    Deno.kill((await mps.pid(UUID))!, "SIGKILL");
    await Deno.remove(`${mps.paths(UUID).pipeDir}/nvidia-cuda-mps-control.pid`);
    await keeper.tick();
    assert.equal(await mps.alive(UUID), true, "restarted");
    assert.equal((await standInCalls(standIn)).filter((c) => c.what === "-d").length, 2);

    // The last fractional partition goes: the daemon is stopped (idle time 0 here).
    await chronos.release(live.id);
    await keeper.tick(); // sees the GPU idle
    await keeper.tick(); // idle for >= 0 ms: stop
    assert.equal(await mps.alive(UUID), false);
    assert.deepEqual(await listGrantIds(grantsDir), []);
    assert.ok(
      lines.some((l) => l.includes(`stopped the control daemon of ${UUID}`)),
      lines.join("\n"),
    );

    // run() loops until aborted.
    const controller = new AbortController();
    const running = keeper.run(controller.signal);
    await new Promise((r) => setTimeout(r, 30));
    controller.abort();
    await running;
  } finally {
    chronos.close();
    await killStandIns(`${dir}/mps`);
    await Deno.remove(dir, { recursive: true });
  }
});
