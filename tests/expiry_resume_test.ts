/**
 * Expiry with `retry.resume_on_expiry` (placement on, PoCL partitions): a job
 * that reported a checkpoint (through the real `cumulus.checkpoint` library in
 * the job image, Runtime.ReportCheckpoint) goes RESUMING when its duration is
 * over and its second attempt, on a fresh partition, restores the checkpoint;
 * a job that asked the same but never checkpointed ends EXPIRED. Both the
 * agent daemon's stop and the orchestrator's backstop are covered.
 */
import assert from "node:assert/strict";
import { spec, TestClient, waitFor, type WireJob } from "./helpers/client.ts";
import { type Stack, startStack, SWARM_SOCKET } from "./helpers/stack.ts";
import { startTestDaemon, testAgent } from "./helpers/agent.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const GRACE_S = 2;
const DURATION_S = 5;

/** Saves checkpoint 7 and outlives its duration; a later attempt restores it and exits 0. */
const CHECKPOINTING = `
import time
from cumulus import checkpoint
restored = checkpoint.restore()
if restored is not None:
    print(f"restored step {restored.step} from {restored.source}", flush=True)
    raise SystemExit(0)
checkpoint.save({"weights": [1.0, 2.0]}, 7)
print("saved step 7", flush=True)
time.sleep(60)
`;

type Checkpointed = WireJob & {
  lastCheckpointStep: number;
  lastCheckpointTier: string;
  lastCheckpointAtMs: number;
  deadlineMs: number;
  partitionId: string;
};

function resumeSpec(command: string[]) {
  return spec(command, {
    gpuMemory: 0.25,
    duration: DURATION_S,
    retry: { maxAttempts: 2, resumeOnExpiry: true },
  });
}

/** Runs the checkpointing job to its end and checks the resumed attempt. */
async function checkpointedJobResumes(c: TestClient, stack: Stack, stoppedBy: RegExp) {
  const id = await c.submit(resumeSpec(["python3", "-c", CHECKPOINTING]));
  const watching = c.watchAll(id, { deadlineMs: 60_000 });
  // The report reaches the orchestrator while the first attempt runs.
  const first = await waitFor(
    "the checkpoint report",
    () => c.getJob(id) as Promise<Checkpointed>,
    (j) =>
      Number(j.lastCheckpointAtMs) > 0 || !["QUEUED", "SCHEDULED", "RUNNING"].includes(j.state),
    20_000,
  );
  assert.equal(first.attempts, 1);
  assert.equal(Number(first.lastCheckpointStep), 7);
  assert.equal(first.lastCheckpointTier, "l1");
  const { lines, job } = await watching;
  assert.equal(job.state, "SUCCEEDED", job.reason);
  const final = await c.getJob(id) as Checkpointed;
  assert.equal(final.attempts, 2);
  const texts = lines.map((l) => l.text);
  assert.ok(texts.includes("saved step 7"), texts.join(" | "));
  assert.ok(texts.includes("restored step 7 from l1"), texts.join(" | "));
  // The second attempt may end before the runner's task poll sees it
  // running: RUNNING is then not recorded for it (as for any short job).
  const states = stack.orch.manager.history(id).map((e) => e.to).filter((s, i) =>
    !(i === 4 && s === "RUNNING")
  );
  assert.deepEqual(states, ["SCHEDULED", "RUNNING", "RESUMING", "SCHEDULED", "SUCCEEDED"]);
  const resuming = stack.orch.manager.history(id).find((e) => e.to === "RESUMING")!;
  assert.match(resuming.reason, new RegExp(`duration of ${DURATION_S} s is over`));
  assert.match(resuming.reason, stoppedBy);
  assert.match(resuming.reason, /resuming from the checkpoint of step 7 \(l1\)/);
  // The second attempt held a fresh partition of its own, for the whole duration.
  assert.ok(Number(final.deadlineMs) > Number(first.deadlineMs), "the deadline was not renewed");
  assert.ok(Number(final.deadlineMs) - resuming.at >= DURATION_S * 1000 - 1000);
  return id;
}

Deno.test({
  name: "backstop: a checkpointed job asking resume_on_expiry resumes and restores; " +
    "one without a checkpoint is EXPIRED",
  ...opts,
  fn: async () => {
    const ta = await testAgent();
    const stack = await startStack({
      env: { ...ta.env, CUMULUS_STOP_GRACE_PERIOD: String(GRACE_S) },
    });
    const c = new TestClient(stack.url);
    try {
      const plain = await c.submit(resumeSpec(["sleep", "60"]));
      const resumed = checkpointedJobResumes(c, stack, /stopped by the orchestrator/);
      resumed.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
      const ended = await waitFor(
        "the job without a checkpoint to end",
        () => c.getJob(plain),
        (j) => ["SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"].includes(j.state),
        30_000,
      );
      assert.equal(ended.state, "EXPIRED", ended.reason);
      assert.equal(ended.attempts, 1);
      assert.match(ended.reason, /stopped by the orchestrator/);
      assert.match(ended.reason, /not resumed: the job reported no checkpoint/);
      assert.equal(Number((ended as Checkpointed).lastCheckpointAtMs), 0);
      await resumed;
    } finally {
      c.close();
      await stack.stop();
      await ta.remove();
    }
  },
});

Deno.test({
  name: "agent daemon: a checkpointed job stopped at its deadline resumes and restores; " +
    "without resume_on_expiry it is EXPIRED",
  ...opts,
  fn: async () => {
    const ta = await testAgent();
    const daemon = startTestDaemon(ta, GRACE_S, SWARM_SOCKET);
    const stack = await startStack({
      env: { ...ta.env, CUMULUS_STOP_GRACE_PERIOD: String(GRACE_S) },
    });
    const c = new TestClient(stack.url);
    try {
      // The same checkpointing job without the opt-in: EXPIRED as before, reason unchanged.
      const optedOut = await c.submit(spec(["python3", "-c", CHECKPOINTING], {
        gpuMemory: 0.25,
        duration: DURATION_S,
        retry: { maxAttempts: 2 },
      }));
      const resumed = checkpointedJobResumes(
        c,
        stack,
        /stopped at its deadline by the node's agent daemon/,
      );
      resumed.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
      const ended = await waitFor(
        "the opted-out job to end",
        () => c.getJob(optedOut) as Promise<Checkpointed>,
        (j) => ["SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"].includes(j.state),
        30_000,
      );
      assert.equal(ended.state, "EXPIRED", ended.reason);
      assert.equal(ended.attempts, 1);
      assert.equal(Number(ended.lastCheckpointStep), 7, "its checkpoint was reported too");
      assert.doesNotMatch(ended.reason, /resum/);
      await resumed;
    } finally {
      c.close();
      await stack.stop();
      await daemon.stop();
      await ta.remove();
    }
  },
});
