import assert from "node:assert/strict";
import { JobStore } from "../store/mod.ts";
import type { NodeInventory, WorkerRegistry } from "../workers/mod.ts";
import { memberJobId, partitionJob, PartitionKeeper } from "./partitions.ts";

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
