/**
 * Crash and shutdown behaviour of a real orchestrator process: SIGKILL in the
 * middle of a job loses no line and duplicates none; SIGTERM exits 0.
 */
import assert from "node:assert/strict";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { packBundle } from "../src/sdk/mod.ts";
import { freePort, spawnOrchestrator } from "./helpers/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function sigkillMidJob(bundle?: Uint8Array): Promise<void> {
  {
    const dataDir = await Deno.makeTempDir({ prefix: "cumulus-restart-" });
    const port = freePort();
    let proc = await spawnOrchestrator(dataDir, port);
    const c = new TestClient(proc.url);
    const n = 60;
    try {
      const id = await c.submit(
        spec([
          "sh",
          "-c",
          `i=1; while [ $i -le ${n} ]; do echo "n=$i"; i=$((i+1)); sleep 0.1; done`,
        ]),
        bundle,
      );
      let seen = 0;
      const watching = c.watchAll(id, { reconnect: true, onLine: () => seen++ });
      await waitFor("some lines", () => Promise.resolve(seen), (v) => v >= 15, 30_000);
      proc.child.kill("SIGKILL");
      await proc.status;
      const seenAtKill = seen;
      await new Promise((r) => setTimeout(r, 1000));
      proc = await spawnOrchestrator(dataDir, port);
      const { lines, job, reconnects } = await watching;
      assert.ok(reconnects >= 1, "the watcher never had to reconnect");
      assert.ok(seenAtKill < n, "the job ended before the kill; the test proved nothing");
      assert.deepEqual(
        lines.map((l) => l.text),
        Array.from({ length: n }, (_, i) => `n=${i + 1}`),
      );
      assert.deepEqual(lines.map((l) => l.seq), Array.from({ length: n }, (_, i) => i + 1));
      assert.equal(job.state, "SUCCEEDED");
      assert.equal(job.exitCode, 0);
    } finally {
      c.close();
      proc.child.kill("SIGTERM");
      await proc.status;
      await Deno.remove(dataDir, { recursive: true });
    }
  }
}

Deno.test({
  name: "SIGKILL mid-job then restart: every line arrives exactly once, in order, job SUCCEEDED",
  ...opts,
  fn: () => sigkillMidJob(),
});

Deno.test({
  name: "the same with a runtime-streamed job: no acked line is lost to the SIGKILL",
  ...opts,
  fn: async () => {
    const fixture = new URL("./fixtures/train_ckpt/", import.meta.url).pathname;
    await sigkillMidJob((await packBundle(fixture)).bytes);
  },
});

Deno.test({
  name: "SIGTERM stops the orchestrator with exit 0 and keeps the job record",
  ...opts,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "cumulus-term-" });
    const port = freePort();
    let proc = await spawnOrchestrator(dataDir, port);
    let c = new TestClient(proc.url);
    try {
      const id = await c.submit(spec(["sh", "-c", "echo done"]));
      await c.watchAll(id);
      c.close();
      proc.child.kill("SIGTERM");
      const status = await proc.status;
      assert.equal(status.code, 0, proc.stderr());
      proc = await spawnOrchestrator(dataDir, port);
      c = new TestClient(proc.url);
      const job = await c.getJob(id);
      assert.equal(job.state, "SUCCEEDED");
      assert.equal(job.logSeq, 1);
    } finally {
      c.close();
      proc.child.kill("SIGTERM");
      await proc.status;
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
