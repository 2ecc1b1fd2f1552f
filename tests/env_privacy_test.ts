/**
 * A job's env often carries secrets: its values go back only where asked for
 * one job (GetJob) and to the submitter, never in listings or watch streams,
 * which any client may open (issue 16, item 4). Real orchestrator and Swarm.
 */
import assert from "node:assert/strict";
import { spec, TestClient, type WireJob } from "./helpers/client.ts";
import { startStack } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

type WithEnv = WireJob & { spec: { env: Record<string, string> } };

Deno.test({
  name: "env values are hidden in ListJobs and WatchJob, shown by GetJob; the job still gets them",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    try {
      const id = await c.submit(
        spec(["sh", "-c", 'echo "token=$API_TOKEN"'], { env: { API_TOKEN: "s3cr3t-v4lue" } }),
      );
      const { lines, job: watched } = await c.watchAll(id);
      assert.equal(watched.state, "SUCCEEDED");
      assert.deepEqual(lines.map((l) => l.text), ["token=s3cr3t-v4lue"]);
      assert.deepEqual((watched as WithEnv).spec.env, { API_TOKEN: "<hidden>" });
      const { jobs } = await c.unary<{ jobs: WithEnv[] }>("ListJobs", { limit: 50 });
      const listed = jobs.find((j) => j.id === id);
      assert.ok(listed, "the job is listed");
      assert.deepEqual(listed.spec.env, { API_TOKEN: "<hidden>" });
      assert.ok(!JSON.stringify(jobs).includes("s3cr3t-v4lue"), "no listed job carries the value");
      assert.deepEqual(((await c.getJob(id)) as WithEnv).spec.env, { API_TOKEN: "s3cr3t-v4lue" });
    } finally {
      c.close();
      await stack.stop();
    }
  },
});
