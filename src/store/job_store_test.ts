import assert from "node:assert/strict";
import { FailedPreconditionError, type JobSpec, NotFoundError } from "../core/mod.ts";
import { JobStore } from "./mod.ts";

function spec(user = "alice"): JobSpec {
  return {
    image: "img",
    command: ["echo", "hi"],
    function: new Uint8Array([1, 2, 3]),
    env: { A: "1" },
    gpuMemory: 0.5,
    duration: 60,
    gpuCount: 1,
    constraints: [],
    resume: false,
    maxAttempts: 1,
    s3Prefix: "",
    user,
    name: "n",
    workdir: "",
  };
}

Deno.test("insert then get round-trips the whole record", () => {
  const store = JobStore.open(":memory:");
  const job = store.insert({ id: "j-1", spec: spec(), token: "t", bundleBytes: 10, createdAt: 5 });
  assert.equal(job.state, "QUEUED");
  assert.deepEqual(store.get("j-1")?.spec, spec());
  assert.equal(store.get("j-1")?.bundleBytes, 10);
  assert.equal(store.get("nope"), null);
  store.close();
});

Deno.test("transitions are compare-and-set and recorded as events", () => {
  const store = JobStore.open(":memory:");
  store.insert({ id: "j-1", spec: spec(), token: "t", bundleBytes: 0, createdAt: 1 });
  store.transition("j-1", "QUEUED", "SCHEDULED", { serviceId: "s1" }, 2);
  assert.throws(() => store.transition("j-1", "QUEUED", "SCHEDULED"), FailedPreconditionError);
  const done = store.transition("j-1", ["SCHEDULED", "RUNNING"], "FAILED", { exitCode: 3 }, 9);
  assert.equal(done.exitCode, 3);
  assert.equal(done.finishedAt, 9);
  assert.deepEqual(store.events("j-1").map((e) => e.to), ["SCHEDULED", "FAILED"]);
  store.close();
});

Deno.test("illegal transitions are refused and leave the record untouched", () => {
  const store = JobStore.open(":memory:");
  store.insert({ id: "j-1", spec: spec(), token: "t", bundleBytes: 0, createdAt: 1 });
  store.transition("j-1", "QUEUED", "CANCELLED");
  assert.throws(() => store.transition("j-1", "CANCELLED", "RUNNING"), FailedPreconditionError);
  assert.equal(store.get("j-1")?.state, "CANCELLED");
  assert.throws(() => store.transition("nope", "QUEUED", "SCHEDULED"), NotFoundError);
  store.close();
});

Deno.test("list filters by state and user and pages newest first", () => {
  const store = JobStore.open(":memory:");
  for (let i = 0; i < 5; i++) {
    store.insert({
      id: `j-${i}`,
      spec: spec(i % 2 ? "bob" : "alice"),
      token: "t",
      bundleBytes: 0,
      createdAt: i,
    });
  }
  store.transition("j-4", "QUEUED", "CANCELLED");
  assert.deepEqual(store.list({ limit: 2 }).map((j) => j.id), ["j-4", "j-3"]);
  const page2 = store.list({ limit: 2, beforeSeq: store.get("j-3")!.seq });
  assert.deepEqual(page2.map((j) => j.id), ["j-2", "j-1"]);
  assert.deepEqual(store.list({ limit: 10, user: "bob" }).map((j) => j.id), ["j-3", "j-1"]);
  assert.deepEqual(store.list({ limit: 10, states: ["CANCELLED"] }).map((j) => j.id), ["j-4"]);
  assert.deepEqual(store.inStates(["QUEUED"]).map((j) => j.id), ["j-0", "j-1", "j-2", "j-3"]);
  const seqs = store.inStates(["QUEUED"]).map((j) => j.seq);
  assert.deepEqual(store.queueEntries(["QUEUED"]), [
    { id: "j-0", user: "alice", seq: seqs[0] },
    { id: "j-1", user: "bob", seq: seqs[1] },
    { id: "j-2", user: "alice", seq: seqs[2] },
    { id: "j-3", user: "bob", seq: seqs[3] },
  ]);
  assert.equal(store.countByState().QUEUED, 4);
  store.close();
});

Deno.test("records survive reopening the database file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let store = JobStore.open(`${dir}/jobs.db`);
    store.insert({ id: "j-1", spec: spec(), token: "tok", bundleBytes: 0, createdAt: 1 });
    store.transition("j-1", "QUEUED", "SCHEDULED");
    store.close();
    store = JobStore.open(`${dir}/jobs.db`);
    assert.equal(store.get("j-1")?.state, "SCHEDULED");
    assert.equal(store.get("j-1")?.token, "tok");
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an older store gains the partition columns and keeps its jobs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { DatabaseSync } = await import("node:sqlite");
    const old = new DatabaseSync(`${dir}/jobs.db`);
    old.exec(`CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
      user TEXT NOT NULL, spec TEXT NOT NULL, function BLOB, state TEXT NOT NULL,
      exit_code INTEGER, reason TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL,
      started_at INTEGER, finished_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
      node_id TEXT NOT NULL DEFAULT '', service_id TEXT NOT NULL DEFAULT '',
      token TEXT NOT NULL, bundle_bytes INTEGER NOT NULL DEFAULT 0,
      has_result INTEGER NOT NULL DEFAULT 0)`);
    const { function: _fn, ...rest } = spec();
    old.prepare(
      "INSERT INTO jobs (id, user, spec, state, created_at, token) VALUES (?, ?, ?, 'QUEUED', 1, 't')",
    ).run("j-old", "alice", JSON.stringify(rest));
    old.close();
    const store = JobStore.open(`${dir}/jobs.db`);
    assert.equal(store.mustGet("j-old").partitionId, "");
    const moved = store.transition("j-old", "QUEUED", "SCHEDULED", {
      partitionId: "p-1",
      gpuDevice: 2,
      deadlineMs: 99,
    });
    assert.deepEqual([moved.partitionId, moved.gpuDevice, moved.deadlineMs], ["p-1", 2, 99]);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recordCheckpoint keeps the newest step; the same step again replaces its tier", () => {
  const store = JobStore.open(":memory:");
  store.insert({ id: "j-1", spec: spec(), token: "t", bundleBytes: 0, createdAt: 1 });
  assert.equal(store.mustGet("j-1").lastCheckpoint, null);
  store.recordCheckpoint("j-1", { step: 0, tier: "l1", atMs: 10 });
  assert.deepEqual(store.mustGet("j-1").lastCheckpoint, { step: 0, tier: "l1", atMs: 10 });
  store.recordCheckpoint("j-1", { step: 100, tier: "l1", atMs: 20 });
  // An upload of an older step finishing late does not move it back.
  store.recordCheckpoint("j-1", { step: 50, tier: "l2", atMs: 30 });
  assert.deepEqual(store.mustGet("j-1").lastCheckpoint, { step: 100, tier: "l1", atMs: 20 });
  store.recordCheckpoint("j-1", { step: 100, tier: "l2", atMs: 40 });
  assert.deepEqual(store.mustGet("j-1").lastCheckpoint, { step: 100, tier: "l2", atMs: 40 });
  assert.throws(
    () => store.recordCheckpoint("j-2", { step: 1, tier: "l1", atMs: 1 }),
    NotFoundError,
  );
  store.close();
});

Deno.test("a reported checkpoint survives reopening the store", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const a = JobStore.open(`${dir}/jobs.db`);
    a.insert({ id: "j-1", spec: spec(), token: "t", bundleBytes: 0, createdAt: 1 });
    a.recordCheckpoint("j-1", { step: 7, tier: "l2", atMs: 99 });
    a.close();
    const b = JobStore.open(`${dir}/jobs.db`);
    assert.deepEqual(b.mustGet("j-1").lastCheckpoint, { step: 7, tier: "l2", atMs: 99 });
    b.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("listings carry the pickled call's size, not its bytes; get() keeps the bytes", () => {
  const store = JobStore.open(":memory:");
  const big = { ...spec(), function: new Uint8Array(3_000_000).fill(7) };
  store.insert({ id: "j-1", spec: big, token: "t", bundleBytes: 0, createdAt: 1 });
  store.insert({
    id: "j-2",
    spec: { ...spec(), function: new Uint8Array() },
    token: "t",
    bundleBytes: 0,
    createdAt: 2,
  });
  const [two, one] = store.list({ limit: 10 });
  assert.equal(one.id, "j-1");
  assert.equal(one.functionBytes, 3_000_000);
  assert.equal(one.spec.function.length, 0);
  assert.equal(two.functionBytes, 0);
  // The rest of the record is what get() returns.
  const full = store.get("j-1")!;
  assert.equal(full.spec.function.length, 3_000_000);
  assert.equal(full.functionBytes, undefined);
  assert.deepEqual({
    ...one,
    spec: { ...one.spec, function: full.spec.function },
    functionBytes: undefined,
  }, {
    ...full,
    functionBytes: undefined,
  });
  store.close();
});

Deno.test("a whole-GPU group's partitions, devices and a reason code round-trip", () => {
  const store = JobStore.open(":memory:");
  store.insert({ id: "j-1", spec: spec(), token: "t", bundleBytes: 0, createdAt: 1 });
  assert.deepEqual(store.get("j-1")?.partitionIds, []);
  assert.deepEqual(store.get("j-1")?.gpuDevices, []);
  store.transition("j-1", "QUEUED", "SCHEDULED", {
    gpuDevice: 2,
    gpuDevices: [2, 5],
    partitionId: "p-000000000001",
    partitionIds: ["p-000000000001", "p-000000000002"],
  });
  const done = store.transition("j-1", "SCHEDULED", "FAILED", {
    reasonCode: "GPU_MEMORY_EXCEEDED",
  });
  assert.deepEqual(done.gpuDevices, [2, 5]);
  assert.deepEqual(done.partitionIds, ["p-000000000001", "p-000000000002"]);
  assert.equal(done.reasonCode, "GPU_MEMORY_EXCEEDED");
  // A new attempt clears them.
  assert.deepEqual(store.update("j-1", { partitionIds: [], gpuDevices: [] }).partitionIds, []);
  store.close();
});
