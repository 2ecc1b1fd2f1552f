/**
 * Placement through an agent reached over SSH (real sshd on loopback, the agent
 * behind its forced command, real libchronos.so): inventory, a partition around
 * a job, SSH down as a visible worker state that loses no job, and a leftover
 * partition released once SSH is back.
 */
import assert from "node:assert/strict";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { startStack } from "./helpers/stack.ts";
import { startSshd } from "./helpers/sshd.ts";
import { AgentClient, localAgentCommand, LocalTransport } from "../src/workers/mod.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

interface WireWorker {
  nodeId: string;
  hostname: string;
  agent: string;
  gpus: Array<{ allocated: number; free: number; partitions: number }>;
}

Deno.test({
  name: "a worker's agent over SSH: partitions around a job; SSH down is 'agent unreachable' " +
    "and the job is not lost; the partition is released once SSH is back",
  ...opts,
  fn: async () => {
    const sshd = await startSshd();
    // The same Chronos state the forced command's agent uses, read locally.
    const local = new AgentClient(
      new LocalTransport({
        agentCommand: localAgentCommand(""),
        env: { CHRONOS_STATE_DIR: sshd.stateDir },
      }),
    );
    let stack: Awaited<ReturnType<typeof startStack>> | null = null;
    let c: TestClient | null = null;
    try {
      const probe = await startStack();
      const self = await probe.orch.swarm.localNodeId();
      const hostname = (await probe.orch.swarm.listNodes()).find((n) => n.id === self)!.hostname;
      await probe.stop();
      stack = await startStack({
        env: {
          CUMULUS_GPU_PLACEMENT: "auto",
          CUMULUS_WORKERS: `${hostname}=root@127.0.0.1:${sshd.port}`,
          SSH_KEY_PATH: sshd.keyPath,
          CUMULUS_RECONCILE_INTERVAL_MS: "500",
        },
      });
      c = new TestClient(stack.url);
      const me = async () =>
        (await c!.unary<{ workers: WireWorker[] }>("ListWorkers", {})).workers
          .find((w) => w.nodeId === self)!;
      assert.equal((await me()).agent, "ok");
      assert.deepEqual((await me()).gpus.map((g) => g.free), [1]);

      const id = await c.submit(spec(["sleep", "4"]));
      await waitFor("running", () => c!.getJob(id), (j) => j.state === "RUNNING");
      assert.deepEqual((await local.list()).map((p) => p.jobId), [id]);
      assert.deepEqual((await me()).gpus.map((g) => g.partitions), [1]);

      await sshd.stop();
      const down = await me();
      assert.match(down.agent, /^agent unreachable: /);
      console.log(`with sshd stopped: ${down.agent}`);
      // A job submitted meanwhile waits (it is not refused, not placed blindly).
      const waiting = await c.submit(spec(["true"]));
      const w = await waitFor("waiting", () => c!.getJob(waiting), (j) => j.reason !== "");
      assert.equal(w.state, "QUEUED");
      const done = await waitFor(
        "first job ended",
        () => c!.getJob(id),
        (j) => j.state !== "RUNNING",
        20_000,
      );
      assert.equal(done.state, "SUCCEEDED", done.reason);
      // Its release could not reach the worker: the partition is still there...
      assert.deepEqual((await local.list()).map((p) => p.jobId), [id]);

      await sshd.start();
      // ...until SSH is back and the reconciliation releases it; the waiting job then runs.
      const { job } = await c.watchAll(waiting);
      assert.equal(job.state, "SUCCEEDED", job.reason);
      await waitFor("released", () => local.list(), (l) => l.length === 0, 10_000);
      assert.equal((await me()).agent, "ok");
    } finally {
      c?.close();
      await stack?.stop();
      await sshd.dispose();
    }
  },
});
