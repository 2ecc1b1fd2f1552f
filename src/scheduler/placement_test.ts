import assert from "node:assert/strict";
import {
  canEverFit,
  type GpuDemand,
  type NodeCapacity,
  place,
  shareOf,
  waitingReason,
} from "./mod.ts";

const GiB = 1024 ** 3;

function node(id: string, devices: Array<[number, number]>, labels = {}): NodeCapacity {
  return {
    nodeId: id,
    hostname: `host-${id}`,
    role: "worker",
    labels,
    schedulable: true,
    devices: devices.map(([gib, free], index) => ({
      index,
      name: "gpu",
      memoryBytes: gib * GiB,
      free,
    })),
  };
}

function demand(d: Partial<GpuDemand>): GpuDemand {
  return { fraction: 0, bytes: 0, count: 1, constraints: [], ...d };
}

Deno.test("two halves fill a device; the third waits with the reason named", () => {
  const nodes = [node("a", [[16, 1]])];
  const first = place(demand({ fraction: 0.5 }), nodes);
  assert.deepEqual(first?.devices, [{ index: 0, fraction: 0.5 }]);
  nodes[0].devices[0].free = 0;
  assert.equal(place(demand({ fraction: 0.5 }), nodes), null);
  assert.equal(
    waitingReason(demand({ fraction: 0.5 }), nodes),
    "waiting: no device with 0.5 free (host-a gpu0: 0.00 free)",
  );
});

Deno.test("an absolute size becomes each device's fraction across mixed GPUs", () => {
  const nodes = [node("small", [[40, 1]]), node("big", [[80, 0.3]])];
  // 20 GiB: half of the 40 GiB card, a quarter of the 80 GiB card.
  const p = place(demand({ bytes: 20 * GiB }), nodes);
  assert.equal(p?.nodeId, "small");
  assert.deepEqual(p?.devices, [{ index: 0, fraction: 0.5 }]);
  nodes[0].devices[0].free = 0.4;
  assert.deepEqual(place(demand({ bytes: 20 * GiB }), nodes)?.devices, [
    { index: 0, fraction: 0.25 },
  ]);
});

Deno.test("a job bigger than every device can never fit", () => {
  const nodes = [node("a", [[16, 1], [16, 1]])];
  assert.equal(canEverFit(demand({ bytes: 17 * GiB }), nodes), false);
  assert.equal(canEverFit(demand({ fraction: 1, count: 3 }), nodes), false);
  assert.equal(canEverFit(demand({ fraction: 1, count: 2 }), nodes), true);
  assert.equal(canEverFit(demand({ fraction: 0.1, constraints: ["node.id==zzz"] }), nodes), false);
});

Deno.test("constraints on hostname and labels are honoured", () => {
  const nodes = [node("a", [[16, 1]], { zone: "x" }), node("b", [[16, 1]], { zone: "y" })];
  assert.equal(
    place(demand({ fraction: 0.5, constraints: ["node.labels.zone==y"] }), nodes)?.nodeId,
    "b",
  );
  assert.equal(
    place(demand({ fraction: 0.5, constraints: ["node.hostname!=host-a"] }), nodes)?.nodeId,
    "b",
  );
});

Deno.test("best fit keeps a whole device free for a big job", () => {
  const nodes = [node("a", [[16, 1], [16, 0.5]])];
  assert.deepEqual(place(demand({ fraction: 0.5 }), nodes)?.devices, [{ index: 1, fraction: 0.5 }]);
});

Deno.test("an absolute size is rounded up, never getting fewer bytes (H100: 85017493504 B)", () => {
  const h100 = { index: 0, name: "H100", memoryBytes: 85017493504, free: 1 };
  const share = shareOf(h100, demand({ bytes: 20 * GiB }));
  assert.equal(share, 0.252594);
  assert.ok(share * h100.memoryBytes >= 20 * GiB);
  assert.equal(shareOf(h100, demand({ fraction: 0.5 })), 0.5);
});
