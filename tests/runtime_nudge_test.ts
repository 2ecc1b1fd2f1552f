/**
 * The runtime's calls hurry the runner's task polls: with a 3 s poll
 * interval, a job whose runtime fetches its bundle and closes its log stream
 * is seen running and ended well before the next regular poll, while a plain
 * command (no runtime calls) waits for the polls.
 */
import assert from "node:assert/strict";
import { packBundle } from "../src/sdk/mod.ts";
import { spec, TestClient } from "./helpers/client.ts";
import { startStack } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const POLL_MS = 3000;

Deno.test({
  name: "a runtime's first call and its end are seen without waiting out the poll interval",
  ...opts,
  fn: async () => {
    const stack = await startStack({ env: { CUMULUS_POLL_INTERVAL_MS: String(POLL_MS) } });
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
