/**
 * Resume on infrastructure failure, against the real local Swarm: a job whose
 * container is removed mid-run is placed again and continues from the state
 * it kept in its L1 checkpoint volume; user failures and jobs allowed one
 * attempt are not resumed.
 */
import assert from "node:assert/strict";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { startStack } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A job counting to `n`, keeping its counter in the checkpoint volume. */
function counter(n: number): string[] {
  return [
    "sh",
    "-c",
    `f=$CUMULUS_CHECKPOINT_DIR/n; i=$(cat $f 2>/dev/null || echo 0); ` +
    `echo "attempt $CUMULUS_ATTEMPT starts at $i"; ` +
    `while [ $i -lt ${n} ]; do i=$((i+1)); echo "step $i"; echo $i > $f.tmp; mv $f.tmp $f; sleep 0.1; done`,
  ];
}

async function removeJobContainer(
  docker: import("dockerode"),
  jobId: string,
): Promise<void> {
  const cs = await docker.listContainers({ filters: { label: [`cumulus.job=${jobId}`] } });
  assert.equal(cs.length, 1, "expected one running container");
  await docker.getContainer(cs[0].Id).remove({ force: true });
}

Deno.test({
  name: "a job whose container is removed resumes from its L1 checkpoint and succeeds",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    try {
      const id = await c.submit(spec(counter(40)));
      let seen = 0;
      const watching = c.watchAll(id, { onLine: () => seen++ });
      await waitFor("a few steps", () => Promise.resolve(seen), (n) => n >= 12, 30_000);
      await removeJobContainer(stack.orch.swarm.docker, id);
      const { lines, job } = await watching;
      assert.equal(job.state, "SUCCEEDED", job.reason);
      const texts = lines.map((l) => l.text);
      const marker = texts.findIndex((t) => t.startsWith("[cumulus] attempt 2 of 3"));
      assert.ok(marker > 0, `no attempt marker in ${texts.slice(0, 20)}`);
      // The second attempt starts where the first one's checkpoint left off.
      const resumedAt = texts.find((t) => t.startsWith("attempt 2 starts at "));
      const from = Number(resumedAt?.split(" ").pop());
      assert.ok(from >= 10 && from < 40, `resumed at ${from}`);
      const before = texts.slice(0, marker).filter((t) => t.startsWith("step "));
      const after = texts.slice(marker).filter((t) => t.startsWith("step "));
      assert.equal(after[0], `step ${from + 1}`);
      assert.equal(after[after.length - 1], "step 40");
      assert.ok(before.length >= from, "lines of the first attempt were lost");
      // Sequence numbers stay gap-free across attempts.
      lines.forEach((l, i) => assert.equal(l.seq, i + 1));
      const stored = await c.getJob(id);
      assert.equal(stored.attempts, 2);
      const states = stack.orch.manager.history(id).map((e) => e.to);
      assert.deepEqual(states, [
        "SCHEDULED",
        "RUNNING",
        "RESUMING",
        "SCHEDULED",
        "RUNNING",
        "SUCCEEDED",
      ]);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});

Deno.test({
  name: "with max_attempts=1 a removed container fails the job instead (exit 137)",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    try {
      const id = await c.submit(spec(counter(100), { retry: { maxAttempts: 1 } }));
      await waitFor("RUNNING", () => c.getJob(id), (j) => j.state === "RUNNING");
      await new Promise((r) => setTimeout(r, 500));
      await removeJobContainer(stack.orch.swarm.docker, id);
      const { job } = await c.watchAll(id);
      assert.equal(job.state, "FAILED");
      assert.equal(job.exitCode, 137);
      assert.match(job.reason, /SIGKILL/);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});

Deno.test({
  name: "a job failing on its own is not resumed, whatever its attempts",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    try {
      const id = await c.submit(
        spec(["sh", "-c", "echo boom; exit 3"], { retry: { maxAttempts: 5 } }),
      );
      const { job } = await c.watchAll(id);
      assert.equal(job.state, "FAILED");
      assert.equal(job.exitCode, 3);
      assert.equal((await c.getJob(id)).attempts, 1);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});

Deno.test({
  name: "checkpoint volumes of ended jobs are removed by the sweep",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    try {
      const id = await c.submit(spec(["sh", "-c", "echo x > $CUMULUS_CHECKPOINT_DIR/f"]));
      assert.equal((await c.watchAll(id)).job.state, "SUCCEEDED");
      const docker = stack.orch.swarm.docker;
      const exists = async () =>
        (await docker.listVolumes({ filters: { name: [`cumulus-ckpt-${id}`] } })).Volumes?.length ??
          0;
      assert.equal(await exists(), 1, "the job's volume was never created");
      await waitFor(
        "volume swept",
        async () => {
          await stack.orch.manager.sweepVolumes();
          return await exists();
        },
        (n) => n === 0,
        15_000,
      );
    } finally {
      c.close();
      await stack.stop();
    }
  },
});
