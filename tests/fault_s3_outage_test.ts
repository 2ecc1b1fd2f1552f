/**
 * Fault test (issue 14, item 3): the S3 server is stopped for 60 s under a
 * PyTorch job checkpointing to L1 (its volume) and L2 (a real s3rver), then
 * started again on the same port over the same objects. Training goes on from
 * L1 during the outage (new steps land in the job's volume and none in S3),
 * L2 catches up afterwards (the newest L1 step appears in S3 with its
 * manifest), and the job SUCCEEDS with its final checkpoint in S3.
 */
import assert from "node:assert/strict";
import { packBundle } from "../src/sdk/mod.ts";
import { checkpointSteps, until } from "./helpers/faults.ts";
import { spec, TestClient, type WireLine } from "./helpers/client.ts";
import { startS3 } from "./helpers/s3.ts";
import { startStack } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const FIXTURE = new URL("./fixtures/train_ckpt/", import.meta.url).pathname;
const OUTAGE_MS = 60_000;
const STEPS = 1200;
const EVERY = 20;

const newest = (steps: number[]) => steps.length ? steps[steps.length - 1] : 0;

Deno.test({
  name:
    "S3 down for 60 s under a checkpointing job: training goes on in L1, L2 catches up, SUCCEEDED",
  ...opts,
  fn: async () => {
    const t0 = Date.now();
    const s3 = await startS3();
    const stack = await startStack({ env: s3.orchestratorEnv });
    const c = new TestClient(stack.url);
    try {
      const bundle = (await packBundle(FIXTURE)).bytes;
      // ~0.1 s a step: about 2 minutes of training, a checkpoint every 2 s.
      const id = await c.submit(
        spec(["python3", "train.py"], {
          env: { STEPS: String(STEPS), EVERY: String(EVERY), STEP_DELAY: "0.1" },
        }),
        bundle,
      );
      const lines: WireLine[] = [];
      const watching = c.watchAll(id, { onLine: (l) => lines.push(l), deadlineMs: 400_000 });
      const l2 = () => checkpointSteps(s3.dir);
      const volume = await until("the job's checkpoint volume", async () => {
        try {
          return (await stack.orch.swarm.docker.getVolume(`cumulus-ckpt-${id}`).inspect())
            .Mountpoint as string;
        } catch {
          return null;
        }
      }, 120_000);
      const l1 = () => checkpointSteps(volume);
      await until("a checkpoint in S3", async () => (await l2()).length > 0 ? true : null, 120_000);

      await s3.halt();
      const haltedAt = Date.now();
      const l1AtHalt = newest(await l1());
      const l2AtHalt = newest(await l2());
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      const l1AtResume = newest(await l1());
      const l2AtResume = newest(await l2());
      await s3.resume();
      const resumedAt = Date.now();

      const caughtUp = await until("L2 to catch up with L1", async () => {
        const steps = await l2();
        return newest(steps) >= l1AtResume ? newest(steps) : null;
      }, 120_000);
      const catchUpS = (Date.now() - resumedAt) / 1000;
      const { job } = await watching;
      assert.equal(job.state, "SUCCEEDED", job.reason);
      assert.ok(lines.some((l) => l.text.startsWith("FINAL ")), "no FINAL line");
      assert.equal(newest(await l2()), STEPS, "the final checkpoint is not in S3");

      const advanced = l1AtResume - l1AtHalt;
      console.log(
        `outage ${((resumedAt - haltedAt) / 1000).toFixed(0)} s: L1 ${l1AtHalt} → ${l1AtResume}, ` +
          `L2 stayed at ${l2AtResume}; L2 reached step ${caughtUp} ${catchUpS.toFixed(1)} s ` +
          `after S3 came back; job SUCCEEDED; test ${((Date.now() - t0) / 1000).toFixed(0)} s`,
      );
      assert.equal(l2AtResume, l2AtHalt, "S3 took uploads while it was down");
      // 60 s at ~0.1 s a step is ~600 steps; a loaded machine still makes a third of that.
      assert.ok(advanced >= 200, `L1 advanced only ${advanced} steps during the outage`);
    } finally {
      c.close();
      await stack.stop();
      await s3.stop();
    }
  },
});
