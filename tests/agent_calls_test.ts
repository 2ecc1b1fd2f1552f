/**
 * How many commands one job costs the manager's own agent with GPU placement on (the real
 * orchestrator, Swarm and the local agent on PoCL), counted at the transport boundary: a
 * wrapper around the orchestrator's real local transport sees every command that reaches the
 * agent.
 */
import assert from "node:assert/strict";
import { INVENTORY_TTL_MS } from "../src/orchestrator/partitions.ts";
import type { Transport } from "../src/workers/mod.ts";
import { testAgent } from "./helpers/agent.ts";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { startStack } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Pids of `serve --stdio` agents that are children of this process. */
function stdioAgentChildren(): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const status = Deno.readTextFileSync(`/proc/${e.name}/status`);
      if (Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]) !== Deno.pid) continue;
      if (/^State:\s+Z/m.test(status)) continue;
      const argv = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      if (argv.includes("serve") && argv.includes("--stdio")) out.push(Number(e.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

Deno.test({
  name: "with GPU placement on, a job costs the agent 2 commands (create, release-job); " +
    "inventory reads are per interval, not per job; one agent process, gone after stop",
  ...opts,
  fn: async () => {
    const ta = await testAgent();
    const seen: Array<{ command: string; at: number }> = [];
    const counting = (t: Transport): Transport => ({
      run(argv, o) {
        const words = argv[1] === "partition" ? argv.slice(1, 3) : argv.slice(1, 2);
        seen.push({ command: words.join(" "), at: Date.now() });
        return t.run(argv, o);
      },
    });
    const stack = await startStack({
      // Sweeps run at start only: a periodic sweep is one read per node per interval.
      env: { ...ta.env, CUMULUS_RECONCILE_INTERVAL_MS: "600000" },
      maxConcurrentJobs: 5,
      wrapAgentTransport: counting,
    });
    const c = new TestClient(stack.url);
    const N = 8;
    let stopped = false;
    try {
      const ids: string[] = [];
      for (let i = 0; i < N; i++) ids.push(await c.submit(spec(["true"], { gpuMemory: 0.1 })));
      await waitFor(
        `${N} jobs done`,
        () => Promise.all(ids.map((id) => c.getJob(id))),
        (js) => js.every((j) => j.state === "SUCCEEDED"),
        120_000,
      );
      // The release follows the end of each job: wait for the last one's.
      await waitFor("partitions released", () => ta.agent.list(), (l) => l.length === 0, 10_000);
      await waitFor(
        "release commands",
        () => Promise.resolve(seen.filter((s) => s.command === "partition release-job").length),
        (n) => n >= N,
        10_000,
      );
      const count = (cmd: string) => seen.filter((s) => s.command === cmd).length;
      const reads = seen.filter((s) => s.command === "partition list").map((s) => s.at);
      const summary = JSON.stringify(seen.map((s) => s.command));
      console.log(
        `agent commands for ${N} jobs: ${seen.length} (create ${count("partition create")}, ` +
          `release-job ${count("partition release-job")}, list ${reads.length}, ` +
          `gpus ${count("gpus")}) over ${reads.length ? reads.at(-1)! - reads[0] : 0} ms`,
      );
      assert.equal(count("partition create"), N, summary);
      assert.equal(count("partition release-job"), N, summary);
      const perJob = (count("partition create") + count("partition release-job")) / N;
      assert.ok(perJob <= 2, `${perJob} agent commands per job`);
      // Device list: once per node (kept until the agent fails).
      assert.ok(count("gpus") <= 1, summary);
      const allowed = new Set([
        "gpus",
        "partition create",
        "partition list",
        "partition release-job",
      ]);
      assert.deepEqual(seen.filter((s) => !allowed.has(s.command)), [], "no other command");
      // Partition lists: the start-up sweep's, then at most one per INVENTORY_TTL_MS however
      // many jobs a round places (one more allowed: a read is stamped before it reaches the agent).
      const span = seen.at(-1)!.at - seen[0].at;
      assert.ok(
        reads.length <= 2 + Math.floor(span / INVENTORY_TTL_MS),
        `${reads.length} partition lists in ${span} ms: ${summary}`,
      );
      assert.equal(stdioAgentChildren().length, 1, "one agent process served every command");
      c.close();
      await stack.stop();
      stopped = true;
      assert.deepEqual(stdioAgentChildren(), [], "the agent process ends with the orchestrator");
    } finally {
      if (!stopped) {
        c.close();
        await stack.stop();
      }
      await ta.remove();
    }
  },
});
