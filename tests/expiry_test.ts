/**
 * Expiry: a job that outlives its duration is stopped and EXPIRED, and its
 * partition is gone from Chronos (checked with chronos_cli itself).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { startStack, SWARM_SOCKET } from "./helpers/stack.ts";
import { startTestDaemon, testAgent } from "./helpers/agent.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const CHRONOS_CLI = fileURLToPath(new URL("../chronos/build/chronos_cli", import.meta.url));
const GRACE_S = 2;

async function chronosList(stateDir: string): Promise<Array<{ job_id?: string; jobId?: string }>> {
  const out = await new Deno.Command(CHRONOS_CLI, {
    args: ["list", "--json"],
    env: { CHRONOS_STATE_DIR: stateDir },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const body = JSON.parse(new TextDecoder().decode(out.stdout));
  return body.partitions ?? [];
}

Deno.test({
  name: "a job with duration=5 that sleeps 60 s is EXPIRED within 5 s + grace + 2 s " +
    "and its partition is gone from chronos_cli list",
  ...opts,
  fn: async () => {
    const ta = await testAgent();
    const stack = await startStack({
      env: { ...ta.env, CUMULUS_STOP_GRACE_PERIOD: String(GRACE_S) },
    });
    const c = new TestClient(stack.url);
    try {
      const id = await c.submit(spec(["sleep", "60"], { duration: 5 }));
      const running = await waitFor("running", () => c.getJob(id), (j) => j.state === "RUNNING");
      const deadline = Number((running as unknown as { deadlineMs: string }).deadlineMs);
      const createdAt = deadline - 5000;
      assert.equal((await chronosList(ta.stateDir)).length, 1);
      const job = await waitFor(
        "expired",
        () => c.getJob(id),
        (j) => j.state !== "RUNNING",
        20_000,
      );
      assert.equal(job.state, "EXPIRED", job.reason);
      assert.match(job.reason, /duration of 5 s is over: stopped by the orchestrator/);
      const took = Number(job.finishedAtMs) - createdAt;
      assert.ok(took >= 5000, `expired after ${took} ms, before its duration`);
      assert.ok(took <= 5000 + GRACE_S * 1000 + 2000, `expired after ${took} ms`);
      console.log(`expired ${took} ms after its partition was created`);
      assert.deepEqual(await chronosList(ta.stateDir), []);
      await waitFor(
        "service removed",
        () => stack.orch.swarm.findService(`cumulus-${id}`),
        (s) => s === null,
        10_000,
      );
    } finally {
      c.close();
      await stack.stop();
      await ta.remove();
    }
  },
});

Deno.test({
  name: "with the agent daemon running, it stops the job at its deadline and the job is EXPIRED " +
    "naming the daemon",
  ...opts,
  fn: async () => {
    const ta = await testAgent();
    const daemon = startTestDaemon(ta, GRACE_S, SWARM_SOCKET);
    const stack = await startStack({
      env: { ...ta.env, CUMULUS_STOP_GRACE_PERIOD: String(GRACE_S) },
    });
    const c = new TestClient(stack.url);
    try {
      const id = await c.submit(spec(["sleep", "60"], { duration: 5 }));
      const running = await waitFor("running", () => c.getJob(id), (j) => j.state === "RUNNING");
      const createdAt = Number((running as unknown as { deadlineMs: string }).deadlineMs) - 5000;
      const job = await waitFor("ended", () => c.getJob(id), (j) => j.state !== "RUNNING", 20_000);
      assert.equal(job.state, "EXPIRED", job.reason);
      assert.match(job.reason, /stopped at its deadline by the node's agent daemon/);
      const took = Number(job.finishedAtMs) - createdAt;
      assert.ok(took >= 5000 && took <= 5000 + GRACE_S * 1000 + 2000, `expired after ${took} ms`);
      console.log(`expired by the daemon ${took} ms after its partition was created`);
      assert.deepEqual(await chronosList(ta.stateDir), []);
    } finally {
      c.close();
      await stack.stop();
      await daemon.stop();
      await ta.remove();
    }
  },
});
