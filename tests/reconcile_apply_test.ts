/**
 * The startup reconcile's apply step on real Swarm: an orchestrator restarted
 * over a store and services left in every shape a crash can leave them acts
 * on each (the decisions themselves are tabled in
 * src/orchestrator/reconcile_plan_test.ts).
 */
import assert from "node:assert/strict";
import { spec, TestClient, waitFor, type WireJob } from "./helpers/client.ts";
import { startStack } from "./helpers/stack.ts";
import { JobStore } from "../src/store/mod.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "a restarted orchestrator attaches, corrects, fails, re-creates and removes as planned",
  ...opts,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "cumulus-reconcile-" });
    let stack = await startStack({ dataDir, keepData: true });
    let c = new TestClient(stack.url);
    const docker = stack.orch.swarm.docker;
    const serviceIdOf = async (id: string) =>
      (await stack.orch.swarm.listServices("cumulus.job"))
        .find((s) => s.labels["cumulus.job"] === id)?.id ?? "";
    const ids: string[] = [];
    let stopped = false;
    try {
      for (let i = 0; i < 4; i++) ids.push(await c.submit(spec(["sleep", "300"])));
      const [attached, vanished, ended, resuming] = ids;
      const running = await waitFor(
        "four running jobs",
        () => Promise.all(ids.map((id) => c.getJob(id))),
        (jobs: WireJob[]) => jobs.every((j) => j.state === "RUNNING" && j.serviceId !== ""),
        60_000,
      );
      c.close();
      await stack.stop(); // keepData: the services keep running
      stopped = true;
      // What a crash can leave behind, written into the stopped orchestrator's store.
      const scheduled = "j-00000000c0de";
      const store = JobStore.open(`${dataDir}/jobs.db`);
      try {
        store.update(attached, { serviceId: "stale" });
        store.transition(ended, "RUNNING", "CANCELLED", { reason: "test" });
        store.transition(resuming, "RUNNING", "RESUMING", { reason: "test" });
        const { spec: s, token } = store.mustGet(attached);
        store.insert({ id: scheduled, spec: s, token, bundleBytes: 0, createdAt: Date.now() });
        store.transition(scheduled, "QUEUED", "SCHEDULED");
        ids.push(scheduled);
      } finally {
        store.close();
      }
      await docker.getService(running[1].serviceId).remove();

      stack = await startStack({ dataDir }); // its stop removes the services of these jobs
      stopped = false;
      c = new TestClient(stack.url);
      const vanishedJob = await c.getJob(vanished);
      assert.equal(vanishedJob.state, "FAILED");
      assert.equal(vanishedJob.reason, "service vanished while the orchestrator was down");
      const attachedJob = await c.getJob(attached);
      assert.equal(attachedJob.state, "RUNNING");
      assert.equal(attachedJob.serviceId, running[0].serviceId, "the stale id was not corrected");
      assert.equal(await serviceIdOf(ended), "", "the ended job's service is still there");
      const resumingNow = await serviceIdOf(resuming);
      assert.notEqual(
        resumingNow,
        running[3].serviceId,
        "the old attempt's service is still there",
      );
      const recreated = await waitFor(
        "the SCHEDULED job running in a new service",
        () => c.getJob(scheduled),
        (j) => j.state === "RUNNING" && j.serviceId !== "",
        60_000,
      );
      assert.equal(recreated.serviceId, await serviceIdOf(scheduled));
      // Still attached a moment later: its runner follows the right service.
      assert.equal((await c.getJob(attached)).state, "RUNNING");
    } finally {
      c.close();
      if (stopped) {
        // The restart never came: remove what the first orchestrator left running.
        for (const s of await stack.orch.swarm.listServices("cumulus.job")) {
          if (ids.includes(s.labels["cumulus.job"])) await stack.orch.swarm.removeService(s.id);
        }
      } else {
        await stack.stop();
      }
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
