/**
 * GPU placement through Chronos partitions with the real local agent
 * (libchronos.so on PoCL, one device), the real orchestrator and Swarm.
 */
import assert from "node:assert/strict";
import { spec, TestClient, waitFor, type WireJob } from "./helpers/client.ts";
import { startStack } from "./helpers/stack.ts";
import { testAgent } from "./helpers/agent.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

interface WireWorker {
  nodeId: string;
  agent: string;
  gpus: Array<{ index: number; allocated: number; free: number; partitions: number }>;
}

Deno.test({
  name: "three 0.5 jobs on one device: two run at once, the third waits with its reason, " +
    "then starts when one ends; shares and partitions follow",
  ...opts,
  fn: async () => {
    const ta = await testAgent();
    const stack = await startStack({ env: ta.env });
    const c = new TestClient(stack.url);
    const workers = async () =>
      (await c.unary<{ workers: WireWorker[] }>("ListWorkers", {})).workers
        .find((w) => w.agent === "ok")!;
    try {
      const first = await workers();
      assert.deepEqual(first.gpus.map((g) => g.free), [1]);
      // The node is labelled with its GPUs (only a manager can; the orchestrator does it).
      const [dev] = await ta.agent.gpus();
      const node = (await stack.orch.swarm.listNodes()).find((n) => n.id === first.nodeId)!;
      assert.equal(node.labels["gpu.count"], "1");
      assert.equal(node.labels["gpu.0.memory"], String(dev.totalMemoryBytes));
      assert.equal(node.labels["gpu.0.name"], dev.name);
      const a = await c.submit(
        spec(["sh", "-c", "echo $CUMULUS_PARTITION_ID $CUMULUS_GPU_DEVICE; sleep 3"]),
      );
      const b = await c.submit(spec(["sleep", "9"]));
      const third = await c.submit(spec(["sleep", "1"]));
      const get = (id: string) => c.getJob(id);
      await waitFor(
        "a and b running",
        () => Promise.all([get(a), get(b)]),
        (js) => js.every((j) => j.state === "RUNNING"),
      );
      const waiting = await get(third);
      assert.equal(waiting.state, "QUEUED");
      assert.match(waiting.reason, /^waiting: no device with 0\.5 free \(.+ gpu0: 0\.00 free\)$/);
      const running = await get(a) as WireJob & { partitionId: string; deadlineMs: string };
      const held = await ta.agent.list();
      assert.deepEqual(held.map((p) => p.jobId).sort(), [a, b].sort());
      assert.ok(held.some((p) => p.id === running.partitionId));
      assert.ok(Number(running.deadlineMs) > Date.now());
      const full = await workers();
      assert.deepEqual(full.gpus.map((g) => [g.allocated, g.free, g.partitions]), [[1, 0, 2]]);
      const metrics = await (await fetch(`http://127.0.0.1:${stack.orch.metricsPort}/metrics`, {
        headers: { authorization: `Bearer ${stack.token}` },
      }))
        .text();
      assert.match(metrics, /^cumulus_gpu_share_allocated\{node="[^"]+",device="0"\} 1$/m);
      // The same through `cumulus workers --json`.
      const cli = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", "main.ts", "workers", "--json"],
        env: stack.env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(cli.code, 0, new TextDecoder().decode(cli.stderr));
      const listed = (JSON.parse(new TextDecoder().decode(cli.stdout)) as WireWorker[])
        .find((w) => w.agent === "ok")!;
      assert.deepEqual(listed.gpus.map((g) => [g.allocated, g.free, g.partitions]), [[1, 0, 2]]);

      const [doneA, startedC] = await Promise.all([
        waitFor("a done", () => get(a), (j) => j.state === "SUCCEEDED", 30_000),
        waitFor("third running", () => get(third), (j) => j.state !== "QUEUED", 30_000),
      ]);
      assert.ok(
        Number(startedC.startedAtMs || Date.now()) >= Number(doneA.finishedAtMs),
        "the third started only after a ended",
      );
      assert.equal((await get(b)).state, "RUNNING", "b still runs beside the third");
      const { lines } = await c.watchAll(a);
      assert.equal(lines[0].text, `${running.partitionId} 0`);

      await waitFor(
        "all done",
        () => Promise.all([get(b), get(third)]),
        (js) => js.every((j) => j.state === "SUCCEEDED"),
        30_000,
      );
      await waitFor("partitions released", () => ta.agent.list(), (l) => l.length === 0, 5000);
      assert.deepEqual((await workers()).gpus.map((g) => g.free), [1]);
    } finally {
      c.close();
      await stack.stop();
      await ta.remove();
    }
  },
});

Deno.test({
  name:
    "a job needing more than any device has is refused UNAVAILABLE; a bad size is INVALID_ARGUMENT",
  ...opts,
  fn: async () => {
    const ta = await testAgent();
    const stack = await startStack({ env: ta.env });
    const c = new TestClient(stack.url);
    try {
      await assert.rejects(
        c.submit(spec(["true"], { gpuMemory: 0, gpuMemorySize: "100TiB" })),
        (e: { code: number; details: string }) =>
          e.code === 14 && /no worker can ever fit this job: it needs 100 TiB/.test(e.details),
      );
      await assert.rejects(
        c.submit(spec(["true"], { gpuMemory: 0, gpuMemorySize: "lots" })),
        (e: { code: number; details: string }) =>
          e.code === 3 && /spec\.gpu_memory_size/.test(e.details),
      );
      // An absolute size that fits runs, with its fraction of the device.
      const id = await c.submit(spec(["true"], { gpuMemory: 0, gpuMemorySize: "1GiB" }));
      const { job } = await c.watchAll(id);
      assert.equal(job.state, "SUCCEEDED");
    } finally {
      c.close();
      await stack.stop();
      await ta.remove();
    }
  },
});

Deno.test({
  name: "an unreachable agent shows as such in ListWorkers and its jobs still run " +
    "(plain Swarm placement)",
  ...opts,
  fn: async () => {
    const stack = await startStack({
      env: {
        CUMULUS_GPU_PLACEMENT: "auto",
        CUMULUS_AGENT_COMMAND: "/nonexistent/cumulus-agent",
      },
    });
    const c = new TestClient(stack.url);
    try {
      const { workers } = await c.unary<{ workers: WireWorker[] }>("ListWorkers", {});
      const local = workers.find((w) => w.agent !== "no agent")!;
      assert.match(local.agent, /^agent unreachable: cannot run \/nonexistent\/cumulus-agent/);
      assert.deepEqual(local.gpus, []);
      const id = await c.submit(spec(["true"]));
      const { job } = await c.watchAll(id);
      assert.equal(job.state, "SUCCEEDED");
    } finally {
      c.close();
      await stack.stop();
    }
  },
});

Deno.test({
  name: "a job whose container is lost resumes with a fresh partition; none is left after",
  ...opts,
  fn: async () => {
    const ta = await testAgent();
    const stack = await startStack({ env: ta.env });
    const c = new TestClient(stack.url);
    try {
      const id = await c.submit(spec([
        "sh",
        "-c",
        'echo "$CUMULUS_ATTEMPT $CUMULUS_PARTITION_ID"; [ "$CUMULUS_ATTEMPT" = 1 ] && sleep 60; true',
      ], { retry: { maxAttempts: 2 } }));
      const first = await waitFor("running", () => c.getJob(id), (j) => j.state === "RUNNING");
      const firstPartition = (first as unknown as { partitionId: string }).partitionId;
      const docker = stack.orch.swarm.docker;
      const cs = await docker.listContainers({
        filters: JSON.stringify({ label: [`cumulus.job=${id}`] }),
      });
      assert.equal(cs.length, 1);
      await docker.getContainer(cs[0].Id).remove({ force: true });
      const { job, lines } = await c.watchAll(id);
      assert.equal(job.state, "SUCCEEDED", job.reason);
      const attempts = lines.map((l) => l.text).filter((t) => /^\d p-/.test(t));
      assert.equal(attempts.length, 2, JSON.stringify(lines));
      const [one, two] = attempts.map((t) => t.split(" ")[1]);
      assert.equal(one, firstPartition);
      assert.notEqual(two, one, "the resumed attempt got a fresh partition");
      await waitFor("released", () => ta.agent.list(), (l) => l.length === 0, 5000);
    } finally {
      c.close();
      await stack.stop();
      await ta.remove();
    }
  },
});

Deno.test({
  name: "a whole-GPU job waits while a 0.5 job holds the device and starts once it ends; " +
    "more GPUs than the worker has are refused UNAVAILABLE; the worker has no device access",
  ...opts,
  fn: async () => {
    const ta = await testAgent();
    const stack = await startStack({ env: ta.env });
    const c = new TestClient(stack.url);
    const get = (id: string) => c.getJob(id);
    try {
      const w = (await c.unary<{ workers: Array<WireWorker & { deviceAccess: string }> }>(
        "ListWorkers",
        {},
      )).workers.find((x) => x.agent === "ok")!;
      // PoCL's CPU device has no GPU behind it: partitions are bookkeeping only.
      assert.equal(w.deviceAccess, "none");
      await assert.rejects(
        c.submit(spec(["true"], { gpuMemory: 0, gpuCount: 2 })),
        (e: { code: number; details: string }) =>
          e.code === 14 &&
          /no worker can ever fit this job: it needs 2 whole GPUs on one worker/.test(e.details),
      );
      const half = await c.submit(spec(["sleep", "4"]));
      await waitFor("half running", () => get(half), (j) => j.state === "RUNNING");
      const whole = await c.submit(spec(["true"], { gpuMemory: 0, gpuCount: 1 }));
      const waiting = await waitFor(
        "whole waits",
        () => get(whole),
        (j) => j.reason.startsWith("waiting"),
      );
      assert.equal(waiting.state, "QUEUED");
      assert.match(waiting.reason, /^waiting: no device with 1 free \(.+ gpu0: 0\.50 free\)$/);
      const [doneHalf, doneWhole] = await Promise.all([
        waitFor("half done", () => get(half), (j) => j.state === "SUCCEEDED", 30_000),
        waitFor("whole done", () => get(whole), (j) => j.state === "SUCCEEDED", 30_000),
      ]);
      assert.ok(
        Number(doneWhole.startedAtMs) >= Number(doneHalf.finishedAtMs),
        "the whole-GPU job started only after the 0.5 job ended",
      );
      const record = doneWhole as WireJob & {
        partitionIds: string[];
        gpuDevices: number[];
        spec: { gpuMemory: number; gpuCount: number };
      };
      assert.equal(record.partitionIds.length, 1);
      assert.deepEqual(record.gpuDevices, [0]);
      assert.deepEqual([record.spec.gpuMemory, record.spec.gpuCount], [1, 1]);
    } finally {
      c.close();
      await stack.stop();
      await ta.remove();
    }
  },
});
