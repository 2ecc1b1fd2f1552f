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

/** Applies a placement to the capacities, as the scheduler does before the next job. */
function hold(nodes: NodeCapacity[], p: NonNullable<ReturnType<typeof place>>): void {
  const n = nodes.find((x) => x.nodeId === p.nodeId)!;
  for (const d of p.devices) n.devices[d.index].free -= d.fraction;
}

Deno.test("whole-GPU groups on an 8-GPU node: all or nothing, disjoint, fractions kept off", () => {
  const nodes = [node("h8", Array.from({ length: 8 }, () => [80, 1] as [number, number]))];
  const whole = (count: number) => demand({ fraction: 1, count });
  // Two jobs of 4 whole GPUs take disjoint halves of the machine.
  const a = place(whole(4), nodes)!;
  hold(nodes, a);
  const b = place(whole(4), nodes)!;
  hold(nodes, b);
  const used = [...a.devices, ...b.devices].map((d) => d.index).sort();
  assert.deepEqual(used, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.ok(a.devices.every((d) => d.fraction === 1));
  // Nothing is left: neither a whole GPU nor a sliver of one.
  assert.equal(place(whole(1), nodes), null);
  assert.equal(place(demand({ fraction: 0.1 }), nodes), null);
  assert.equal(
    waitingReason(whole(2), nodes).split(" (")[0],
    "waiting: no node with 2 devices with 1 free",
  );
});

Deno.test("a whole-GPU job never lands on a device a fraction holds, and waits for a free one", () => {
  const nodes = [node("h4", [[80, 1], [80, 1], [80, 1], [80, 1]])];
  const half = place(demand({ fraction: 0.5 }), nodes)!;
  hold(nodes, half);
  const two = place(demand({ fraction: 1, count: 2 }), nodes)!;
  assert.ok(!two.devices.some((d) => d.index === half.devices[0].index));
  hold(nodes, two);
  // One whole GPU is left, and the half-used one.
  assert.deepEqual(place(demand({ fraction: 1, count: 2 }), nodes), null);
  assert.equal(place(demand({ fraction: 1, count: 1 }), nodes)?.devices.length, 1);
  // A second half fills the fractional device instead of breaking a whole one (best fit).
  assert.deepEqual(place(demand({ fraction: 0.5 }), nodes)?.devices, [
    { index: half.devices[0].index, fraction: 0.5 },
  ]);
});

Deno.test("more whole GPUs than any worker has can never fit; spread across nodes never counts", () => {
  const nodes = [node("a", [[80, 1], [80, 1]]), node("b", [[80, 1], [80, 1]])];
  assert.equal(canEverFit(demand({ fraction: 1, count: 2 }), nodes), true);
  // Four GPUs exist, but never four on one worker.
  assert.equal(canEverFit(demand({ fraction: 1, count: 4 }), nodes), false);
  assert.equal(place(demand({ fraction: 1, count: 3 }), nodes), null);
  assert.equal(
    canEverFit(demand({ fraction: 1, count: 8 }), [node("h8", Array(8).fill([80, 0]))]),
    true,
  );
});
