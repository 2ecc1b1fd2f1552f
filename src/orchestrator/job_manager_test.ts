/**
 * JobManager over a real store and log in a temporary directory, with the
 * Swarm calls a test needs stood in (unit tests: the Docker side is covered by
 * the integration tests in tests/). Covers what the manager itself decides:
 * admission, the reports it refuses for ended jobs, the typed events the
 * handlers hand it, cancel, watch and a scheduling round's image check.
 */
import assert from "node:assert/strict";
import { mockJob } from "../core/_mock.ts";
import { type JobRecord, type JobSpec, REASON_CODES } from "../core/mod.ts";
import { LogHub } from "../logs/mod.ts";
import { JobStore } from "../store/mod.ts";
import type { SwarmClient } from "../swarm/mod.ts";
import { JobManager, type WatchEvent } from "./job_manager.ts";

interface Fixture {
  manager: JobManager;
  store: JobStore;
  /** Epoch ms the manager sees; tests move it. */
  clock: { now: number };
  /** Swarm calls made, by name. */
  calls: string[];
  close(): Promise<void>;
}

async function fixture(
  over: { maxConcurrentJobs?: number; maxQueuedJobs?: number; images?: string[] } = {},
): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-manager-" });
  const store = JobStore.open(`${dir}/jobs.db`);
  const logs = new LogHub(dir);
  const clock = { now: 1_000_000 };
  const calls: string[] = [];
  const images = new Set(over.images ?? ["cumulus-job:latest"]);
  const swarm: Partial<SwarmClient> = {
    resolveImage: (ref) => {
      calls.push(`resolveImage ${ref}`);
      return Promise.resolve(images.has(ref) ? `sha256:${ref.length}` : null);
    },
    removeService: (id) => {
      calls.push(`removeService ${id}`);
      return Promise.resolve(true);
    },
  };
  const manager = new JobManager({
    store,
    logs,
    swarm: swarm as SwarmClient,
    // 0 slots: no runner starts, so nothing reaches Docker unless a test asks.
    maxConcurrentJobs: over.maxConcurrentJobs ?? 0,
    maxQueuedJobs: over.maxQueuedJobs ?? 10,
    orchestratorAddress: "127.0.0.1:1",
    stopGracePeriodS: 2,
    pollIntervalMs: 10,
    instanceId: "i",
    bundleDir: dir,
    now: () => clock.now,
    log: () => {},
  });
  return {
    manager,
    store,
    clock,
    calls,
    async close() {
      await manager.shutdown();
      await logs.closeAll();
      store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Runs `fn` with a fresh {@link fixture}, closed afterwards. */
async function withManager(
  over: Parameters<typeof fixture>[0],
  fn: (f: Fixture) => Promise<void> | void,
): Promise<void> {
  const f = await fixture(over);
  try {
    await fn(f);
  } finally {
    await f.close();
  }
}

const spec = (over: Partial<JobSpec> = {}): JobSpec => ({ ...mockJob().spec, ...over });

/** Records `job` (QUEUED) straight in the store, then moves it to `state`. */
function stored(f: Fixture, state: JobRecord["state"]): JobRecord {
  const job = f.store.insert({
    id: `j-${crypto.randomUUID().slice(0, 12)}`,
    spec: spec(),
    token: "t",
    bundleBytes: 0,
    createdAt: f.clock.now,
  });
  if (state === "QUEUED") return job;
  f.store.transition(job.id, "QUEUED", "SCHEDULED", { attempts: 1, serviceId: "s" }, f.clock.now);
  if (state === "SCHEDULED") return f.store.mustGet(job.id);
  f.store.transition(job.id, "SCHEDULED", "RUNNING", {}, f.clock.now);
  if (state === "RUNNING") return f.store.mustGet(job.id);
  return f.store.transition(job.id, "RUNNING", state, { exitCode: 0 }, f.clock.now);
}

Deno.test("JobManager.submit: records a QUEUED job with a fresh token, up to the queue's limit", async () => {
  await withManager({ maxQueuedJobs: 2 }, async (f) => {
    const a = await f.manager.submit(spec({ name: "a" }), null);
    const b = await f.manager.submit(spec({ name: "b" }), null);
    assert.equal(a.state, "QUEUED");
    assert.match(a.id, /^j-[0-9a-f]{12}$/);
    assert.notEqual(a.token, b.token);
    assert.equal(a.token.length, 48, "24 random bytes, hex");
    await assert.rejects(
      f.manager.submit(spec(), null),
      (err: Error) =>
        err.name === "ResourceExhaustedError" && /queue is full \(2 jobs/.test(err.message),
    );
    assert.equal(f.store.countByState().QUEUED, 2, "the refused job left no record");
  });
});

Deno.test("JobManager.submit: refused while shutting down", async () => {
  const f = await fixture();
  await f.manager.shutdown();
  await assert.rejects(f.manager.submit(spec(), null), { name: "UnavailableError" });
  await f.close();
});

Deno.test("JobManager.checkImage: a missing image is INVALID_ARGUMENT naming spec.image", async () => {
  await withManager({}, async (f) => {
    await f.manager.checkImage(spec());
    await assert.rejects(
      f.manager.checkImage(spec({ image: "nope:1" })),
      (err: Error) => err.name === "InvalidArgumentError" && /"nope:1" not found/.test(err.message),
    );
  });
});

Deno.test("JobManager: an image id is looked up once for the submit check and its scheduling round", async () => {
  const f = await fixture({ images: [] });
  try {
    // Missing: never cached, so each lookup asks Docker.
    await assert.rejects(f.manager.checkImage(spec({ image: "x:1" })));
    await assert.rejects(f.manager.checkImage(spec({ image: "x:1" })));
    assert.equal(f.calls.filter((c) => c === "resolveImage x:1").length, 2);
  } finally {
    await f.close();
  }
  const g = await fixture();
  try {
    await g.manager.checkImage(spec());
    await g.manager.checkImage(spec());
    assert.equal(g.calls.length, 1, "found: reused within its time to live");
    g.clock.now += 5_000;
    await g.manager.checkImage(spec());
    assert.equal(g.calls.length, 2, "looked up again once it is old");
  } finally {
    await g.close();
  }
});

Deno.test("JobManager scheduling: a queued job whose image vanished is FAILED by the round", async () => {
  await withManager({ maxConcurrentJobs: 1, images: [] }, async (f) => {
    const job = await f.manager.submit(spec({ image: "gone:1" }), null);
    let now = f.store.mustGet(job.id);
    for (let i = 0; i < 200 && now.state === "QUEUED"; i++) {
      await new Promise((r) => setTimeout(r, 5));
      now = f.store.mustGet(job.id);
    }
    assert.equal(now.state, "FAILED");
    assert.match(now.reason, /gone:1/);
  });
});

Deno.test("JobManager.assertRunning: an ended job accepts no more reports", async () => {
  await withManager({}, (f) => {
    f.manager.assertRunning(stored(f, "RUNNING"));
    assert.throws(
      () => f.manager.assertRunning(stored(f, "SUCCEEDED")),
      (err: Error) =>
        err.name === "FailedPreconditionError" && /already ended \(SUCCEEDED\)/.test(err.message),
    );
  });
});

Deno.test("JobManager.assertWithinStopWindow: an ended job's lines are taken within its stop window only", async () => {
  const f = await fixture(); // stop grace 2 s: the window is 7 s
  try {
    f.manager.assertWithinStopWindow(stored(f, "RUNNING"));
    const ended = stored(f, "CANCELLED");
    f.clock.now += 6_999;
    f.manager.assertWithinStopWindow(ended);
    f.clock.now += 2;
    assert.throws(() => f.manager.assertWithinStopWindow(ended), /accepts no more log lines/);
  } finally {
    await f.close();
  }
});

Deno.test("JobManager: a stored result is recorded; a refused one is noted with its code", async () => {
  await withManager({}, (f) => {
    const a = stored(f, "RUNNING");
    f.manager.resultStored(a.id);
    assert.equal(f.store.mustGet(a.id).hasResult, true);
    const b = stored(f, "RUNNING");
    f.manager.resultRefused(b.id, "too large");
    const got = f.store.mustGet(b.id);
    assert.equal(got.state, "RUNNING", "the attempt decides how it ends");
    assert.equal(got.reasonCode, REASON_CODES.RESULT_REFUSED);
    assert.equal(got.reason, "result refused: too large");
    // Events for a job without a runner change nothing and throw nothing.
    f.manager.runtimeExited(a.id, 1, 0);
    f.manager.nudge(a.id);
    assert.equal(f.store.mustGet(a.id).state, "RUNNING");
  });
});

Deno.test("JobManager.cancel: a queued job is CANCELLED without Docker; an ended one is refused", async () => {
  const f = await fixture();
  try {
    const q = stored(f, "QUEUED");
    const got = await f.manager.cancel(q.id);
    assert.equal(got.state, "CANCELLED");
    assert.equal(got.reasonCode, REASON_CODES.CANCELLED);
    assert.deepEqual(f.calls, [], "no service to remove");
    // Scheduled but no runner here (another orchestrator's, or one that crashed):
    // its service is removed by name.
    const s = stored(f, "SCHEDULED");
    await f.manager.cancel(s.id);
    assert.deepEqual(f.calls, [`removeService cumulus-${s.id}`]);
    await assert.rejects(
      f.manager.cancel(q.id),
      (err: Error) =>
        err.name === "FailedPreconditionError" && /already ended \(CANCELLED\)/.test(err.message),
    );
    await assert.rejects(f.manager.cancel("j-000000000000"), { name: "NotFoundError" });
  } finally {
    await f.close();
  }
});

/** Follows `id`'s watch (no logs) to its end, pushing each event into `seen`. */
async function watchAll(f: Fixture, id: string, seen: WatchEvent[]): Promise<void> {
  const opts = { afterSeq: 0, noLogs: true, noFollow: false, signal: new AbortController().signal };
  for await (const ev of f.manager.watch(id, opts)) seen.push(ev);
}

Deno.test("JobManager.watch: the job first, then its state changes; ends once the job has ended", async () => {
  await withManager({}, async (f) => {
    const job = stored(f, "QUEUED");
    const seen: WatchEvent[] = [];
    const done = watchAll(f, job.id, seen);
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 2));
    await f.manager.cancel(job.id);
    await done;
    assert.deepEqual(seen.map((e) => e.job?.state), ["QUEUED", "CANCELLED"]);
    // An ended job's watch ends after its backlog, even when following.
    const again: WatchEvent[] = [];
    await watchAll(f, job.id, again);
    assert.deepEqual(again.map((e) => e.job?.state), ["CANCELLED"]);
  });
});
