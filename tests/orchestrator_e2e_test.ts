/**
 * End-to-end tests of the orchestrator against the real local Docker engine
 * in Swarm mode: job outcome, cancel, concurrency limit, fan-out.
 */
import assert from "node:assert/strict";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { startStack } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "a job's output and exit code come back; exit 3 makes it FAILED with code 3",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    try {
      const id = await c.submit(spec(["sh", "-c", "echo hello; echo oops >&2; exit 3"]));
      const { lines, job } = await c.watchAll(id);
      assert.deepEqual(lines.map((l) => l.text).sort(), ["hello", "oops"]);
      assert.equal(lines.find((l) => l.text === "oops")?.stream, "STDERR");
      assert.deepEqual(lines.map((l) => l.seq), [1, 2]);
      assert.equal(job.state, "FAILED");
      assert.equal(job.exitCode, 3);
      assert.ok(job.hasExitCode);
      const stored = await c.getJob(id);
      assert.equal(stored.state, "FAILED");
      assert.ok(stored.finishedAtMs >= stored.startedAtMs && stored.startedAtMs > 0);
      // The service is removed once the job ended.
      assert.equal(await stack.orch.swarm.findService(`cumulus-${id}`), null);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});

Deno.test({
  name: "cancel makes a running job CANCELLED within 2 s and removes its service",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    try {
      const id = await c.submit(spec(["sh", "-c", "echo started; sleep 30"]));
      await waitFor("RUNNING", () => c.getJob(id), (j) => j.state === "RUNNING");
      const t0 = performance.now();
      const res = await c.cancel(id);
      const ms = performance.now() - t0;
      assert.equal(res.job.state, "CANCELLED");
      assert.ok(ms < 2000, `cancel took ${ms} ms`);
      assert.equal(await stack.orch.swarm.findService(`cumulus-${id}`), null);
      assert.equal((await c.getJob(id)).state, "CANCELLED");
      // The job's process is gone too, not only the service.
      await waitFor(
        "container gone",
        () => stack.orch.swarm.docker.listContainers({ filters: { label: [`cumulus.job=${id}`] } }),
        (cs) => cs.length === 0,
        2000 - (performance.now() - t0),
      );
      // Cancelling again is a state error, not a crash.
      await assert.rejects(c.cancel(id), (e: { code: number }) => e.code === 9);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});

Deno.test({
  name: "MAX_CONCURRENT_JOBS=2: 6 jobs never exceed 2 services, all succeed, start in order",
  ...opts,
  fn: async () => {
    const stack = await startStack({ maxConcurrentJobs: 2 });
    const c = new TestClient(stack.url);
    const swarm = stack.orch.swarm;
    let peak = 0;
    let polling = true;
    try {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        ids.push(await c.submit(spec(["sh", "-c", `echo job ${i}; sleep 0.5`])));
      }
      const mine = new Set(ids);
      const poller = (async () => {
        while (polling) {
          const svcs = (await swarm.listServices("cumulus.job"))
            .filter((s) => mine.has(s.labels["cumulus.job"]));
          peak = Math.max(peak, svcs.length);
          await new Promise((r) => setTimeout(r, 25));
        }
      })();
      const jobs = await Promise.all(ids.map((id) => c.watchAll(id).then((r) => r.job)));
      polling = false;
      await poller;
      assert.ok(peak <= 2, `saw ${peak} services at once`);
      assert.ok(peak >= 1);
      assert.ok(stack.orch.manager.peakActive <= 2);
      for (const j of jobs) assert.equal(j.state, "SUCCEEDED");
      // Start decisions (QUEUED -> SCHEDULED, recorded before the service is
      // created) follow submission order. Observed RUNNING times cannot show
      // this: two jobs started together become visible in either order.
      const scheduledAt = ids.map((id) =>
        stack.orch.manager.history(id).find((e) => e.to === "SCHEDULED")!.seq
      );
      assert.deepEqual(scheduledAt, [...scheduledAt].sort((a, b) => a - b));
      for (const id of ids) {
        const j = await c.getJob(id);
        assert.ok(j.startedAtMs > 0 && j.finishedAtMs >= j.startedAtMs);
      }
    } finally {
      polling = false;
      c.close();
      await stack.stop();
    }
  },
});

Deno.test({
  name: "50 concurrent watchers of one job each receive every line in order",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    const n = 2000;
    try {
      const id = await c.submit(
        spec([
          "sh",
          "-c",
          `sleep 1; i=1; while [ $i -le ${n} ]; do echo "line $i"; i=$((i+1)); done`,
        ]),
      );
      const watchers = await Promise.all(
        Array.from({ length: 50 }, () => new TestClient(stack.url)),
      );
      try {
        const results = await Promise.all(watchers.map((w) => w.watchAll(id)));
        for (const r of results) {
          assert.equal(r.lines.length, n);
          r.lines.forEach((l, i) => {
            assert.equal(l.seq, i + 1);
            assert.equal(l.text, `line ${i + 1}`);
          });
          assert.equal(r.job.state, "SUCCEEDED");
        }
      } finally {
        for (const w of watchers) w.close();
      }
    } finally {
      c.close();
      await stack.stop();
    }
  },
});

Deno.test({
  name: "WatchJob resumes after a given sequence number",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    try {
      const id = await c.submit(spec(["sh", "-c", "for i in 1 2 3 4 5; do echo $i; done"]));
      await c.watchAll(id);
      const lines: Array<{ seq: number; text: string }> = [];
      await new Promise<void>((resolve, reject) => {
        const call = c.raw.WatchJob({ jobId: id, afterSeq: 3 });
        call.on("data", (ev: { lines: typeof lines }) => lines.push(...ev.lines));
        call.on("error", reject);
        call.on("end", resolve);
      });
      assert.deepEqual(lines.map((l) => [l.seq, l.text]), [[4, "4"], [5, "5"]]);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});

Deno.test({
  name: "a job that prints 200,000 lines faster than Docker relays them and exits loses none",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    const n = 200_000;
    try {
      const id = await c.submit(spec(["seq", "1", String(n)]));
      const { lines, job } = await c.watchAll(id);
      assert.equal(job.state, "SUCCEEDED");
      assert.equal(lines.length, n);
      assert.equal(lines[0].text, "1");
      assert.equal(lines[n - 1].text, String(n));
      assert.equal(lines[n - 1].seq, n);
      assert.equal((await c.getJob(id)).logSeq, n);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});
