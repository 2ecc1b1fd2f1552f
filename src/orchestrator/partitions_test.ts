import assert from "node:assert/strict";
import { mockJob } from "../core/_mock.ts";
import { JobStore } from "../store/mod.ts";
import {
  AgentCommandError,
  type AgentPartition,
  type NodeInventory,
  withPartitions,
  type WorkerRegistry,
} from "../workers/mod.ts";
import {
  INVENTORY_TTL_MS,
  memberJobId,
  partitionJob,
  PartitionKeeper,
  PartitionWaitError,
  PENDING_PARTITION,
} from "./partitions.ts";

/** A registry whose inventory reads are counted and finish when the test says. */
function countingRegistry() {
  const reads: Array<(v: NodeInventory[]) => void> = [];
  const registry = {
    inventory: () => new Promise<NodeInventory[]>((resolve) => reads.push(resolve)),
  } as unknown as WorkerRegistry;
  return { registry, reads };
}

Deno.test("listingInventory() shares one read among concurrent callers; placement reads fresh", async () => {
  const { registry, reads } = countingRegistry();
  const store = JobStore.open(":memory:");
  const keeper = new PartitionKeeper({
    registry,
    store,
    mode: "auto",
    now: () => 0,
    log: () => {},
  });
  const burst = Array.from({ length: 100 }, () => keeper.listingInventory());
  assert.equal(reads.length, 1, "100 listings at once: one agent read");
  // Placement never waits on a listing's read.
  const fresh = keeper.inventory();
  assert.equal(reads.length, 2);
  reads[0]([]);
  reads[1]([]);
  await Promise.all([...burst, fresh]);
  // Once it ended, the next listing reads again.
  const next = keeper.listingInventory();
  assert.equal(reads.length, 3);
  reads[2]([]);
  await next;
  store.close();
});

Deno.test("partitionJob() and memberJobId() name a whole-GPU group's members", () => {
  assert.equal(memberJobId("j-0123456789ab", 0, 1), "j-0123456789ab");
  assert.equal(memberJobId("j-0123456789ab", 3, 4), "j-0123456789ab:g3");
  assert.equal(partitionJob("j-0123456789ab"), "j-0123456789ab");
  assert.equal(partitionJob("j-0123456789ab:g3"), "j-0123456789ab");
  for (const other of ["", "train-7", "j-0123456789ab:x", "j-0123:g1"]) {
    assert.equal(partitionJob(other), "", other);
  }
});

/** A one-node registry (n1, one 16 GiB device) whose agent reads and commands are counted. */
function cachedWorld() {
  const GIB = 1024 ** 3;
  const calls: string[] = [];
  let held: AgentPartition[] = [];
  let refuse = false;
  const reads: Array<() => void> = [];
  let gate = false;
  let labels: Record<string, string> = {};
  const nodeInv = (): NodeInventory =>
    withPartitions(
      {
        node: {
          id: "n1",
          hostname: "n1",
          state: "ready",
          availability: "active",
          role: "manager",
          labels: { ...labels },
          address: "",
          cpus: 2,
        },
        agent: "ok",
        access: "none",
        devices: [],
        partitions: [],
      },
      [{ index: 0, name: "pocl", memoryBytes: 16 * GIB, uuid: "", pciBusId: "", vendor: "" }],
      [...held],
    );
  const agent = {
    create(req: { device: number; memory: number; jobId: string; owner: string }) {
      calls.push("create");
      if (refuse) return Promise.reject(new AgentCommandError(4, "NO_CAPACITY", "no capacity"));
      const p: AgentPartition = {
        id: `p-${req.jobId.slice(-4)}`,
        device: req.device,
        memory: req.memory,
        memoryBytes: req.memory * 16 * GIB,
        owner: req.owner,
        jobId: req.jobId,
        startMs: 0,
        expiresAtMs: 600_000,
        durationS: 600,
      };
      held.push(p);
      return Promise.resolve({ ...p, existing: false });
    },
    releaseJob(jobId: string) {
      calls.push("release-job");
      const n = held.filter((p) => p.jobId === jobId).length;
      held = held.filter((p) => p.jobId !== jobId);
      return Promise.resolve(n);
    },
    gpus() {
      calls.push("gpus");
      return Promise.resolve([]);
    },
  };
  const registry = {
    inventory() {
      calls.push("list");
      // The listing is taken when the read starts; a gated read answers when the test says.
      const snapshot = [nodeInv()];
      if (!gate) return Promise.resolve(snapshot);
      return new Promise<NodeInventory[]>((resolve) => reads.push(() => resolve(snapshot)));
    },
    agentById: () => Promise.resolve(agent),
  } as unknown as WorkerRegistry;
  return {
    registry,
    calls,
    reads,
    gate: (on: boolean) => void (gate = on),
    refuse: (on: boolean) => void (refuse = on),
    label: (l: Record<string, string>) => void (labels = l),
  };
}

/** A keeper over `w` with GPU placement on and the clock `now`. */
function keeperOver(w: ReturnType<typeof cachedWorld>, store: JobStore, now = () => 0) {
  return new PartitionKeeper({ registry: w.registry, store, mode: "auto", now, log: () => {} });
}

/** A job placed on n1 device 0 for half of it, its partition not created yet. */
function placedJob(store: JobStore, id: string, at: number) {
  store.insert({ id, spec: mockJob().spec, token: "t", bundleBytes: 0, createdAt: at });
  return store.transition(id, ["QUEUED"], "SCHEDULED", {
    nodeId: "n1",
    gpuDevice: 0,
    partitionId: PENDING_PARTITION,
    attempts: 1,
  }, at);
}

Deno.test("capacities() reads the agents once per INVENTORY_TTL_MS; acquire and release write into that read", async () => {
  const w = cachedWorld();
  const store = JobStore.open(":memory:");
  let now = 0;
  const keeper = keeperOver(w, store, () => now);
  const free = async () => (await keeper.capacities())![0].devices[0].free;
  assert.equal(await free(), 1);
  const job = placedJob(store, "j-00000000000a", now);
  assert.equal(await free(), 0.5, "a placed job holds its share before its partition exists");
  const got = await keeper.acquire(job);
  assert.equal(got.partitionId, "p-000a");
  now = 500;
  assert.equal(await free(), 0.5, "the created partition is in the cached read");
  await keeper.release(store.update(job.id, {}));
  assert.equal(await free(), 1, "the released one is gone from it");
  assert.deepEqual(w.calls, ["list", "create", "release-job"], "acquire asked for no gpus");
  now = INVENTORY_TTL_MS + 1;
  assert.equal(await free(), 1);
  assert.deepEqual(w.calls.filter((c) => c === "list").length, 2, "older than the TTL: read again");
  store.close();
});

Deno.test("a create that lands while a read is under way is not undone by that read", async () => {
  const w = cachedWorld();
  const store = JobStore.open(":memory:");
  const keeper = keeperOver(w, store);
  await keeper.capacities(); // the devices are known
  const job = placedJob(store, "j-00000000000b", 0);
  w.gate(true);
  const reading = keeper.inventory(); // lists no partition...
  await keeper.acquire(job); // ...then the job's partition is made
  w.reads[0]();
  await reading;
  const caps = await keeper.capacities();
  assert.equal(caps![0].devices[0].free, 0.5);
  store.close();
});

Deno.test("a refused create drops the cached read: the next round asks the agent", async () => {
  const w = cachedWorld();
  const store = JobStore.open(":memory:");
  const keeper = keeperOver(w, store);
  await keeper.capacities();
  w.refuse(true);
  await assert.rejects(
    keeper.acquire(placedJob(store, "j-00000000000c", 0)),
    (e: unknown) => e instanceof PartitionWaitError && /no capacity/.test(e.message),
  );
  await keeper.capacities();
  assert.deepEqual(w.calls, ["list", "create", "list"]);
  store.close();
});

Deno.test("checkFits() refuses only on a fresh read: a label added after the cached one counts", async () => {
  const w = cachedWorld();
  const store = JobStore.open(":memory:");
  const keeper = keeperOver(w, store, () => 0);
  await keeper.capacities(); // the cached read, before the label
  w.label({ pool: "a" });
  const spec = mockJob({ spec: { constraints: ["node.labels.pool==a"] } }).spec;
  await keeper.checkFits(spec);
  assert.equal(w.calls.filter((c) => c === "list").length, 2, "the cache said no: one fresh read");
  // A constraint no node meets is refused, after its own fresh read.
  const never = mockJob({ spec: { constraints: ["node.labels.pool==b"] } }).spec;
  await assert.rejects(
    keeper.checkFits(never),
    (e: Error) => /no worker can ever fit this job/.test(e.message),
  );
  assert.equal(w.calls.filter((c) => c === "list").length, 3);
  // One that fits on the cached read reads nothing more.
  await keeper.checkFits(mockJob().spec);
  assert.equal(w.calls.filter((c) => c === "list").length, 3);
  store.close();
});
