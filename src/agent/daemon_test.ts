import assert from "node:assert/strict";
import { ChronosError, type Partition, type PartitionList } from "./chronos.ts";
import { ExpiryDaemon, type JobContainers, type PartitionStore } from "./daemon.ts";

/** An in-memory store that, like Chronos, reclaims expired partitions on every call. */
class FakeStore implements PartitionStore {
  now = 1_000;
  parts = new Map<string, Partition>();
  add(id: string, jobId: string, expiresAtMs: number): void {
    this.parts.set(id, {
      id,
      device: 0,
      memory: 0.5,
      memoryBytes: 1,
      owner: "u",
      jobId,
      startMs: 0,
      expiresAtMs,
      durationS: expiresAtMs / 1000,
      remainingS: 0,
    });
  }
  #reclaim(): Partition[] {
    const gone = [...this.parts.values()].filter((p) => p.expiresAtMs <= this.now);
    for (const p of gone) this.parts.delete(p.id);
    return gone;
  }
  list(): Promise<PartitionList> {
    this.#reclaim();
    return Promise.resolve({ nowMs: this.now, partitions: [...this.parts.values()] });
  }
  reap(): Promise<PartitionList> {
    return Promise.resolve({ nowMs: this.now, partitions: this.#reclaim() });
  }
  release(id: string): Promise<Partition> {
    this.#reclaim();
    const p = this.parts.get(id);
    if (p === undefined) return Promise.reject(new ChronosError(3, `no partition ${id}`));
    this.parts.delete(id);
    return Promise.resolve(p);
  }
}

function setup() {
  const store = new FakeStore();
  const stops: string[] = [];
  const containers: JobContainers = {
    stopJob: (jobId) => {
      stops.push(jobId);
      return Promise.resolve([`c-${jobId}`]);
    },
  };
  const lines: string[] = [];
  const daemon = new ExpiryDaemon(store, containers, {
    graceS: 1,
    intervalMs: 100,
    log: (l) => lines.push(l),
    now: () => store.now,
  });
  return { store, stops, lines, daemon };
}

Deno.test("expiry stops the job's containers once, whoever reclaimed the partition", async () => {
  const { store, stops, lines, daemon } = setup();
  store.add("p-a", "job-a", 2_000);
  store.add("p-b", "job-b", 3_000);
  store.add("p-c", "", 2_000);
  assert.equal(await daemon.tick(), 1_000);
  assert.deepEqual(stops, []);
  store.now = 2_500;
  await store.list(); // someone else's call reclaims p-a and p-c first
  await daemon.tick();
  await daemon.settle();
  assert.deepEqual(stops, ["job-a"]);
  await daemon.tick();
  await daemon.settle();
  assert.deepEqual(stops, ["job-a"], "enforced once");
  assert.ok(lines.some((l) => l.includes("job-a: stopped c-job-a")), lines.join("\n"));
});

Deno.test("an expired whole-GPU group stops its job's containers once, by the job's id", async () => {
  const { store, stops, daemon } = setup();
  store.add("p-0", "j-0123456789ab:g0", 2_000);
  store.add("p-1", "j-0123456789ab:g1", 2_000);
  await daemon.tick();
  store.now = 2_500;
  await daemon.tick();
  await daemon.settle();
  // The containers carry the job's own id (label cumulus.job), never a member's "J:g<k>".
  assert.deepEqual(stops, ["j-0123456789ab"]);
});

Deno.test("a partition released before its expiry is left alone", async () => {
  const { store, stops, daemon } = setup();
  store.add("p-a", "job-a", 2_000);
  await daemon.tick();
  store.now = 1_500;
  await store.release("p-a");
  await daemon.tick();
  store.now = 5_000;
  await daemon.tick();
  await daemon.settle();
  assert.deepEqual(stops, []);
});

Deno.test("an expired partition whose job already holds a new one is not enforced", async () => {
  const { store, stops, daemon } = setup();
  store.add("p-a", "job-a", 2_000);
  await daemon.tick();
  store.now = 2_100;
  store.add("p-a2", "job-a", 60_000); // the job was placed again under a new lease
  await daemon.tick();
  await daemon.settle();
  assert.deepEqual(stops, []);
});

Deno.test("a restarted daemon enforces what expired while it was down (reap)", async () => {
  const { store, stops, daemon } = setup();
  store.add("p-a", "job-a", 2_000);
  store.now = 9_000;
  await daemon.tick();
  await daemon.settle();
  assert.deepEqual(stops, ["job-a"]);
});

Deno.test("run ends when its signal aborts", async () => {
  const { daemon } = setup();
  const controller = new AbortController();
  const running = daemon.run(controller.signal);
  await new Promise((r) => setTimeout(r, 50));
  controller.abort();
  await running;
});

Deno.test("a failing engine is retried, then the partition is released", async () => {
  const store = new FakeStore();
  let calls = 0;
  const lines: string[] = [];
  const daemon = new ExpiryDaemon(store, {
    stopJob: () => {
      calls++;
      return calls < 3 ? Promise.reject(new Error("engine down")) : Promise.resolve(["c1"]);
    },
  }, {
    graceS: 0,
    intervalMs: 100,
    log: (l) => lines.push(l),
    now: () => store.now,
    retryPauseMs: 1,
  });
  store.add("p-a", "job-a", 2_000);
  await daemon.tick();
  store.now = 2_001;
  await daemon.tick();
  await daemon.settle();
  assert.equal(calls, 3);
  assert.ok(lines.some((l) => l.includes("attempt 2/10")), lines.join("\n"));
  assert.ok(lines.some((l) => l.includes("job-a: stopped c1")), lines.join("\n"));
});
