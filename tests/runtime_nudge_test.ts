/**
 * How a job's start and end reach the orchestrator without waiting out the
 * task poll interval (3 s here):
 * - with container events (the default), a plain command on the manager's
 *   node is seen running and ended from Docker's start and die events, with
 *   at most two task reads (the first look, and the one confirming Swarm
 *   still wanted it running when it exited);
 * - a job run by the runtime ends when its runtime announces the command's
 *   exit (the log stream's last batch), before the container's die event;
 * - with events off (or on a node whose events do not reach the manager),
 *   the runtime's calls hurry the polls: a job whose runtime fetches its
 *   bundle and closes its log stream is seen ended early, while a plain
 *   command (no runtime calls) waits for the polls.
 */
import assert from "node:assert/strict";
import { packBundle } from "../src/sdk/mod.ts";
import { spec, TestClient } from "./helpers/client.ts";
import { startStack } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const POLL_MS = 3000;

Deno.test({
  name:
    "container events: a job's start and end are seen at once, with at most two task reads; a runtime's announced end comes first",
  ...opts,
  fn: async () => {
    const stack = await startStack({ env: { CUMULUS_POLL_INTERVAL_MS: String(POLL_MS) } });
    const c = new TestClient(stack.url);
    let polls = 0;
    const swarm = stack.orch.swarm;
    const serviceTask = swarm.serviceTask.bind(swarm);
    swarm.serviceTask = (id) => {
      polls++;
      return serviceTask(id);
    };
    try {
      const id = await c.submit(spec(["sh", "-c", "echo plain; exit 3"]));
      const r = await c.watchAll(id);
      assert.equal(r.job.state, "FAILED", r.job.reason);
      assert.equal(r.job.exitCode, 3, "the exit code comes from the die event");
      assert.deepEqual(r.lines.map((l) => l.text), ["plain"]);
      const took = Number(r.job.finishedAtMs) - Number(r.job.createdAtMs);
      assert.ok(took < POLL_MS - 500, `seen ended after ${took} ms`);
      assert.ok(Number(r.job.startedAtMs) > 0, "seen running (the start event)");
      // The first look, and the one confirming Swarm still wanted it running at its exit.
      assert.ok(polls <= 2, `${polls} task polls`);
      assert.equal(stack.orch.manager.attemptEnds.bySource.event, 1);

      // Run by the runtime (a bundle): its announcement ends the attempt, with
      // every line and the exit code, and no task read for the exit.
      const bundle =
        (await packBundle(new URL("./fixtures/train_ckpt/", import.meta.url).pathname)).bytes;
      polls = 0;
      const streamed = await c.submit(
        spec(["sh", "-c", "for i in 1 2 3; do echo line $i; done; exit 4"]),
        bundle,
      );
      const s = await c.watchAll(streamed);
      assert.equal(s.job.state, "FAILED", s.job.reason);
      assert.equal(s.job.exitCode, 4);
      assert.deepEqual(s.lines.map((l) => l.text), ["line 1", "line 2", "line 3"]);
      assert.deepEqual(stack.orch.manager.attemptEnds.bySource, {
        runtime: 1,
        event: 1,
        poll: 0,
        hook: 0,
      });
      assert.ok(polls <= 1, `${polls} task polls (only the first look)`);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});

Deno.test({
  name:
    "events off: a runtime's first call and its end are seen without waiting out the poll interval",
  ...opts,
  fn: async () => {
    const stack = await startStack({
      env: { CUMULUS_POLL_INTERVAL_MS: String(POLL_MS), CUMULUS_CONTAINER_EVENTS: "off" },
    });
    const c = new TestClient(stack.url);
    try {
      const bundle =
        (await packBundle(new URL("./fixtures/train_ckpt/", import.meta.url).pathname)).bytes;
      const streamed = await c.submit(spec(["sh", "-c", "echo via runtime"]), bundle);
      const a = await c.watchAll(streamed);
      assert.equal(a.job.state, "SUCCEEDED", a.job.reason);
      assert.deepEqual(a.lines.map((l) => l.text), ["via runtime"]);
      const took = Number(a.job.finishedAtMs) - Number(a.job.createdAtMs);
      assert.ok(took < POLL_MS - 500, `runtime job took ${took} ms to be seen ended`);

      // Control: no runtime, nothing to nudge; the end waits for a poll.
      const plain = await c.submit(spec(["sh", "-c", "echo plain"]));
      const b = await c.watchAll(plain);
      assert.equal(b.job.state, "SUCCEEDED", b.job.reason);
      const plainTook = Number(b.job.finishedAtMs) - Number(b.job.createdAtMs);
      assert.ok(plainTook >= POLL_MS, `plain job seen ended after ${plainTook} ms`);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});
