/**
 * Result retention through a real orchestrator and real Python jobs on the
 * local Swarm: a result is readable, then removed once its retention is over
 * (the job record stays and GetResult says why), also while the orchestrator
 * was down (the sweep at start).
 */
import assert from "node:assert/strict";
import { CumulusClient, CumulusRpcError, type Job, packBundle } from "../src/sdk/mod.ts";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { startStack } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const PYTHON = "/usr/bin/python3";

/** cloudpickle'd `(fn, args, kwargs)` made by the local Python (the job image's version). */
async function pickledCall(expr: string): Promise<Uint8Array> {
  const code = "import sys, cloudpickle\n" +
    `sys.stdout.buffer.write(cloudpickle.dumps((lambda: ${expr}, (), {})))`;
  const out = await new Deno.Command(PYTHON, { args: ["-c", code], stderr: "inherit" }).output();
  assert.ok(out.success, "cloudpickle on the test host");
  return out.stdout;
}

/** The value in a result pickle, as the local Python reads it (printed with repr). */
async function unpickle(bytes: Uint8Array): Promise<string> {
  const child = new Deno.Command(PYTHON, {
    args: ["-c", "import sys, pickle; print(repr(pickle.loads(sys.stdin.buffer.read())))"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(bytes);
  await w.close();
  const out = await child.output();
  assert.ok(out.success);
  return new TextDecoder().decode(out.stdout).trim();
}

async function resultFiles(dataDir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(`${dataDir}/results`)) names.push(e.name);
  return names.sort();
}

function removedError(job: Job, retention: string) {
  return (err: unknown) => {
    assert.ok(err instanceof CumulusRpcError, String(err));
    assert.equal(err.code, "NOT_FOUND");
    assert.equal(
      err.message,
      `result of job ${job.id} was removed after its retention of ${retention}`,
    );
    return true;
  };
}

Deno.test({
  name: "a result is readable, then removed after its retention with a clear NOT_FOUND",
  ...opts,
  fn: async () => {
    const stack = await startStack({
      env: { CUMULUS_RESULT_RETENTION: "4s", CUMULUS_RESULT_SWEEP_INTERVAL_MS: "200" },
    });
    const client = new CumulusClient(stack.url);
    try {
      const fn = await pickledCall("6 * 7");
      // A job may shorten the orchestrator's retention, never exceed it.
      await assert.rejects(
        client.submit({ function: fn, resultRetention: 10 }),
        (e: unknown) =>
          e instanceof CumulusRpcError && e.code === "INVALID_ARGUMENT" &&
          e.message.startsWith("spec.result_retention"),
      );
      const byDefault = await client.submit({ function: fn, name: "default-retention" });
      const short = await client.submit({
        function: fn,
        name: "own-retention",
        resultRetention: 1,
      });
      const cases: Array<[Job, number, string]> = [[byDefault, 4, "4s"], [short, 1, "1s"]];
      for (const [job, seconds] of cases) {
        const done = await job.wait();
        assert.equal(done.state, "SUCCEEDED", done.reason);
        assert.equal(done.spec.resultRetention, seconds);
        // Readable before its retention is over (the 1 s one may be gone already).
        if (job === byDefault) assert.equal(await unpickle((await job.result())!), "42");
      }
      for (const [job, seconds, text] of cases) {
        const gone = await waitFor(
          `result of ${job.id} removed`,
          () => job.status(),
          (j) => j.resultRemovedAtMs !== null,
          15_000,
        );
        const kept = gone.resultRemovedAtMs! - gone.finishedAtMs!;
        assert.ok(kept >= seconds * 1000, `removed ${kept} ms after the end, retention ${text}`);
        assert.ok(kept < seconds * 1000 + 5000, `removed only ${kept} ms after the end`);
        await assert.rejects(job.result(), removedError(job, text));
        // The record stays, with its outcome.
        assert.equal(gone.state, "SUCCEEDED");
        assert.equal(gone.hasResult, true);
        const listed = await client.listJobs({});
        assert.ok(listed.jobs.some((j) => j.id === job.id && j.resultRemovedAtMs !== null));
      }
      assert.deepEqual(await resultFiles(stack.dataDir), []);
    } finally {
      client.close();
      await stack.stop();
    }
  },
});

Deno.test({
  name: "a result whose retention ended while the orchestrator was down is removed at start",
  ...opts,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "cumulus-retention-" });
    // Sweeps an hour apart: only the sweep at start can remove it in this test.
    const env = { CUMULUS_RESULT_RETENTION: "2s", CUMULUS_RESULT_SWEEP_INTERVAL_MS: "3600000" };
    try {
      const first = await startStack({ dataDir, keepData: true, env });
      const c1 = new CumulusClient(first.url);
      let id = "";
      try {
        const job = await c1.submit({ function: await pickledCall("'kept'") });
        id = job.id;
        assert.equal((await job.wait()).state, "SUCCEEDED");
        assert.equal(await unpickle((await job.result())!), "'kept'");
      } finally {
        c1.close();
        await first.stop();
      }
      assert.deepEqual(await resultFiles(dataDir), [`${id}.bin`, `${id}.json`]);
      await new Promise((r) => setTimeout(r, 2500));
      const second = await startStack({ dataDir, env });
      const c2 = new CumulusClient(second.url);
      try {
        const job = c2.job(id);
        const rec = await job.status();
        assert.ok(rec.resultRemovedAtMs !== null, "removed by the sweep at start");
        await assert.rejects(job.result(), removedError(job, "2s"));
        assert.deepEqual(await resultFiles(dataDir), []);
      } finally {
        c2.close();
        await second.stop();
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a job's bundle is kept while it runs and removed once it has ended",
  ...opts,
  fn: async () => {
    const stack = await startStack({ env: { CUMULUS_RESULT_SWEEP_INTERVAL_MS: "200" } });
    const c = new TestClient(stack.url);
    try {
      const bundle =
        (await packBundle(new URL("./fixtures/train_ckpt/", import.meta.url).pathname)).bytes;
      const id = await c.submit(spec(["sh", "-c", "sleep 2"]), bundle);
      const path = `${stack.dataDir}/bundles/${id}.tar.gz`;
      await waitFor("RUNNING", () => c.getJob(id), (j) => j.state === "RUNNING");
      await new Promise((r) => setTimeout(r, 500)); // a few sweeps while it runs
      assert.ok((await Deno.stat(path)).size > 0, "the bundle of a running job was removed");
      const { job } = await c.watchAll(id);
      assert.equal(job.state, "SUCCEEDED", job.reason);
      await waitFor(
        "the bundle removed",
        async () => {
          try {
            await Deno.stat(path);
            return true;
          } catch {
            return false;
          }
        },
        (there) => !there,
        5000,
      );
    } finally {
      c.close();
      await stack.stop();
    }
  },
});
