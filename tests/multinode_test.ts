/**
 * Two Swarm nodes on one machine: the manager and a second Docker engine in a
 * network namespace the test creates (198.18.0.2, joined over the project
 * bridge). Draining the node a job runs on makes the job resume on the other.
 */
import assert from "node:assert/strict";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { MANAGER_ADDR, startSecondNode } from "./helpers/second_node.ts";
import { JOB_IMAGE, startStack } from "./helpers/stack.ts";

Deno.test({
  name: "draining the node a job runs on resumes the job on the other node",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const node = await startSecondNode([JOB_IMAGE]);
    const stack = await startStack({ host: MANAGER_ADDR });
    const c = new TestClient(stack.url);
    const docker = stack.orch.swarm.docker;
    const manager = (await docker.info()).Swarm.NodeID as string;
    const setAvailability = async (id: string, availability: "active" | "drain") => {
      const n = await docker.getNode(id).inspect();
      await docker.getNode(id).update({
        version: n.Version.Index,
        ...n.Spec,
        Availability: availability,
      });
    };
    try {
      // The second node is listed as a worker.
      const workers = await c.unary<{ workers: Array<{ nodeId: string; state: string }> }>(
        "ListWorkers",
        {},
      );
      assert.ok(workers.workers.some((w) => w.nodeId === node.nodeId && w.state === "ready"));
      await setAvailability(node.nodeId, "drain");
      const id = await c.submit(spec([
        "sh",
        "-c",
        'echo "attempt $CUMULUS_ATTEMPT"; for i in $(seq 1 30); do echo "tick $i"; sleep 0.2; done',
      ]));
      const seen: string[] = [];
      const watching = c.watchAll(id, { onLine: (l) => seen.push(l.text) });
      await waitFor("ticks", () => Promise.resolve(seen.length), (n) => n > 5, 30_000);
      assert.equal((await c.getJob(id)).nodeId, manager);
      await setAvailability(node.nodeId, "active");
      await setAvailability(manager, "drain");
      const { lines, job } = await watching;
      assert.equal(job.state, "SUCCEEDED", job.reason);
      const final = await c.getJob(id);
      assert.equal(final.nodeId, node.nodeId, "the job did not move to the second node");
      assert.equal(final.attempts, 2);
      const texts = lines.map((l) => l.text);
      assert.ok(texts.includes("attempt 1") && texts.includes("attempt 2"));
      assert.ok(texts.includes("[cumulus] attempt 2 of 3 starts"));
      assert.equal(texts[texts.length - 1], "tick 30");
    } finally {
      await setAvailability(manager, "active").catch(() => {});
      c.close();
      await stack.stop();
      await node.stop();
    }
  },
});
