/**
 * A worker that stays unreachable: the second Swarm node (tests/helpers/
 * second_node.ts) is cut off the project bridge while a job runs there.
 * Swarm marks it down when its heartbeats stop but keeps the task "running";
 * once it has been down for config `node_down_grace` (3 s here) the attempt
 * ends as lost (TASK_LOST) and the job resumes on the manager's node, where
 * it succeeds. Prints how long each step took (CUMULUS_TEST_VERBOSE not needed).
 */
import assert from "node:assert/strict";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { MANAGER_ADDR, startSecondNode } from "./helpers/second_node.ts";
import { JOB_IMAGE, startStack } from "./helpers/stack.ts";

/** The host side of the second node's veth pair (second_node.ts). */
const VETH_HOST = "cw1-host";

async function ip(args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

Deno.test({
  name: "a job whose node stays unreachable resumes on the other node and succeeds",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const node = await startSecondNode([JOB_IMAGE]);
    const t0 = Date.now();
    const logged: string[] = [];
    const stack = await startStack({
      host: MANAGER_ADDR,
      env: { CUMULUS_NODE_DOWN_GRACE: "3" },
      log: (m) => logged.push(`${((Date.now() - t0) / 1000).toFixed(1)} s ${m}`),
    });
    const c = new TestClient(stack.url);
    const swarm = stack.orch.swarm;
    const manager = (await swarm.docker.info()).Swarm.NodeID as string;
    try {
      await swarm.setNodeAvailability(manager, "drain");
      // Attempt 1 runs until stopped; attempt 2 finishes at once.
      const id = await c.submit(spec([
        "sh",
        "-c",
        'echo "attempt $CUMULUS_ATTEMPT on $(hostname)"; ' +
        'if [ "$CUMULUS_ATTEMPT" = 1 ]; then while :; do echo tick; sleep 0.2; done; fi; ' +
        'echo "done"',
      ], { retry: { resume: true, maxAttempts: 3 } }));
      const running = await waitFor(
        "the job running on the second node",
        () => c.getJob(id),
        (j) => j.state === "RUNNING" && j.nodeId === node.nodeId,
        60_000,
      );
      assert.equal(running.attempts, 1);
      await swarm.setNodeAvailability(manager, "active");
      // Let a few lines through, then cut the node off: its heartbeats stop.
      await new Promise((r) => setTimeout(r, 1000));
      const cutAt = Date.now();
      logged.push(`${((cutAt - t0) / 1000).toFixed(1)} s (test) link cut`);
      await ip(["link", "set", VETH_HOST, "down"]);
      const downAt = await waitFor(
        "Swarm to mark the second node down",
        async () => {
          const n = (await swarm.listNodes()).find((x) => x.id === node.nodeId);
          return n?.state === "down" ? Date.now() : 0;
        },
        (t) => t > 0,
        60_000,
      );
      const resumed = await waitFor(
        "the job to leave the lost node",
        () => c.getJob(id),
        (j) => j.attempts >= 2 || j.state !== "RUNNING",
        60_000,
      );
      const resumedAt = Date.now();
      const final = await waitFor(
        "the job to end",
        () => c.getJob(id),
        (j) => ["SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"].includes(j.state),
        60_000,
      );
      const endAt = Date.now();
      console.log(
        `node_down: Swarm marked the node down ${downAt - cutAt} ms after the cut; ` +
          `attempt 1 ended ${resumedAt - cutAt} ms after it (${resumedAt - downAt} ms after ` +
          `"down", grace 3 s); the job succeeded ${endAt - cutAt} ms after it`,
      );
      assert.equal(final.state, "SUCCEEDED", final.reason);
      assert.equal(final.attempts, 2, JSON.stringify(resumed));
      assert.equal(final.nodeId, manager, "the job did not move to the manager's node");
      const history = stack.orch.manager.history(id);
      const lost = history.find((e) => e.to === "RESUMING");
      assert.ok(lost, JSON.stringify(history));
      assert.match(
        lost.reason,
        /^attempt 1 node \S+ unreachable for \d+ s \(Swarm marks it down\)/,
      );
      // The lost attempt's service was removed (Swarm keeps no task of it running).
      const services = await swarm.listServices(`cumulus.job=${id}`);
      assert.ok(running.serviceId !== "" && final.serviceId !== running.serviceId);
      assert.ok(!services.some((s) => s.id === running.serviceId), JSON.stringify(services));
    } catch (err) {
      console.log(logged.join("\n"));
      throw err;
    } finally {
      await swarm.setNodeAvailability(manager, "active").catch(() => {});
      c.close();
      await stack.stop();
      await node.stop();
    }
  },
});
