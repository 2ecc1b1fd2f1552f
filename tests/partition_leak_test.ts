/**
 * Killing the orchestrator (SIGKILL) at random points while jobs start and
 * finish leaves no Chronos partition leaked once it is back, and loses no job.
 */
import assert from "node:assert/strict";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { freePort, spawnOrchestrator } from "./helpers/process.ts";
import { SWARM_SOCKET } from "./helpers/stack.ts";
import { testAgent } from "./helpers/agent.ts";
import { connectDocker, SwarmClient } from "../src/swarm/mod.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const TERMINAL = ["SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"];

Deno.test({
  name:
    "SIGKILLed orchestrator at random points: no leaked partition and no lost job after restart",
  ...opts,
  fn: async () => {
    const ta = await testAgent();
    const dataDir = await Deno.makeTempDir({ prefix: "cumulus-leak-" });
    const port = freePort();
    const env = { ...ta.env, CUMULUS_STOP_GRACE_PERIOD: "1", CUMULUS_RECONCILE_INTERVAL_MS: "500" };
    const ids: string[] = [];
    const kills: number[] = [];
    let orch = await spawnOrchestrator(dataDir, port, env);
    try {
      for (let round = 0; round < 4; round++) {
        const c = new TestClient(orch.url);
        ids.push(await c.submit(spec(["sleep", "1"], { gpuMemory: 0.4 })));
        ids.push(await c.submit(spec(["sleep", "2"], { gpuMemory: 0.4 })));
        c.close();
        // Anywhere from placement and partition creation to the jobs' end and release.
        const at = Math.floor(Math.random() * 2500);
        kills.push(at);
        await new Promise((r) => setTimeout(r, at));
        orch.child.kill("SIGKILL");
        await orch.status;
        orch = await spawnOrchestrator(dataDir, port, env);
      }
      const c = new TestClient(orch.url);
      try {
        const jobs = await waitFor(
          "every job ended",
          () => Promise.all(ids.map((id) => c.getJob(id))),
          (js) => js.every((j) => TERMINAL.includes(j.state)),
          60_000,
        );
        console.log(`kills at ${kills.join(", ")} ms: ${jobs.map((j) => j.state).join(" ")}`);
        assert.deepEqual(
          jobs.map((j) => j.state),
          ids.map(() => "SUCCEEDED"),
          JSON.stringify(
            jobs.map((j) => [j.id, j.state, j.reason]),
          ),
        );
        await waitFor("no partition left", () => ta.agent.list(), (l) => l.length === 0, 5000);
        // The reconciliation itself: a partition left behind by an ended job is released;
        // one of a job this orchestrator never knew (another orchestrator's) is left alone.
        const base = { device: 0, memory: 0.1, durationS: 60, owner: "x" };
        await ta.agent.create({ ...base, jobId: ids[0] });
        await ta.agent.create({ ...base, jobId: "j-ffffffffffff" });
        const left = await waitFor(
          "orphan released",
          () => ta.agent.list(),
          (l) => l.length === 1,
          5000,
        );
        assert.equal(left[0].jobId, "j-ffffffffffff");
      } finally {
        c.close();
      }
    } finally {
      orch.child.kill("SIGKILL");
      await orch.status;
      const swarm = new SwarmClient(connectDocker(SWARM_SOCKET));
      for (const s of await swarm.listServices("cumulus.job")) {
        if (ids.includes(s.labels["cumulus.job"])) await swarm.removeService(s.id);
      }
      await Deno.remove(dataDir, { recursive: true });
      // An agent command the killed orchestrator had just started may still touch the dir.
      await new Promise((r) => setTimeout(r, 1000));
      await ta.remove();
    }
  },
});
