/**
 * Fault test (issue 14, item 3): the agent's expiry daemon is SIGKILLed at a
 * random moment while three GPU-placed jobs of a real orchestrator hold
 * Chronos partitions, and is not started again. Two jobs end by themselves,
 * one reaches its deadline with no daemon to stop it (the orchestrator's
 * backstop does); once they have ended no partition is left.
 * tests/agent_daemon_test.ts covers the daemon killed and restarted around
 * expiries on its own.
 */
import assert from "node:assert/strict";
import { startTestDaemon, testAgent } from "./helpers/agent.ts";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { startStack, SWARM_SOCKET } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const GRACE_S = 2;
const TERMINAL = ["SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"];

Deno.test({
  name: "agent daemon SIGKILLed mid-job: the jobs end and no partition is left",
  ...opts,
  fn: async () => {
    const ta = await testAgent();
    const daemon = startTestDaemon(ta, GRACE_S, SWARM_SOCKET);
    const stack = await startStack({
      env: { ...ta.env, CUMULUS_STOP_GRACE_PERIOD: String(GRACE_S) },
    });
    const c = new TestClient(stack.url);
    try {
      const ids = [
        await c.submit(spec(["sleep", "6"], { gpuMemory: 0.3 })),
        await c.submit(spec(["sleep", "8"], { gpuMemory: 0.3 })),
        await c.submit(spec(["sleep", "60"], { gpuMemory: 0.3, duration: 6 })),
      ];
      await waitFor(
        "the jobs to run",
        () => Promise.all(ids.map((id) => c.getJob(id))),
        (js) => js.every((j) => j.state === "RUNNING"),
        60_000,
      );
      const held = await ta.agent.list();
      assert.deepEqual(held.map((p) => p.jobId).sort(), [...ids].sort());
      const killAt = Math.random() * 3000;
      await new Promise((r) => setTimeout(r, killAt));
      await daemon.kill();
      const jobs = await waitFor(
        "every job to end",
        () => Promise.all(ids.map((id) => c.getJob(id))),
        (js) => js.every((j) => TERMINAL.includes(j.state)),
        60_000,
      );
      assert.deepEqual(
        jobs.map((j) => j.state),
        ["SUCCEEDED", "SUCCEEDED", "EXPIRED"],
        JSON.stringify(jobs.map((j) => [j.state, j.reason])),
      );
      await waitFor("no partition left", () => ta.agent.list(), (l) => l.length === 0, 10_000);
      console.log(
        `daemon SIGKILLed ${killAt.toFixed(0)} ms into the jobs; ${
          jobs[2].reason
        }; 0 partitions left`,
      );
    } finally {
      c.close();
      await stack.stop();
      await daemon.stop();
      await ta.remove();
    }
  },
});
