import assert from "node:assert/strict";
import type { NodeInfo } from "../swarm/mod.ts";
import { downForMs, type DownMark, nextDownMarks, NodeWatch } from "./node_watch.ts";

function node(id: string, state: string, hostname = `host-${id}`): NodeInfo {
  return {
    id,
    hostname,
    state,
    availability: "active",
    role: "worker",
    labels: {},
    address: "",
    cpus: 1,
  };
}

const marks: Array<
  [string, Record<string, DownMark>, NodeInfo[], number, Record<string, DownMark>]
> = [
  ["a ready node has no mark", {}, [node("a", "ready")], 1000, {}],
  ["a node newly down is marked from this read", {}, [node("a", "down")], 1000, {
    a: { hostname: "host-a", sinceMs: 1000 },
  }],
  [
    "a node still down keeps the time it was first seen down",
    { a: { hostname: "host-a", sinceMs: 400 } },
    [node("a", "down")],
    9000,
    { a: { hostname: "host-a", sinceMs: 400 } },
  ],
  [
    "a node back up loses its mark",
    { a: { hostname: "host-a", sinceMs: 400 } },
    [node("a", "ready")],
    9000,
    {},
  ],
  [
    "a node gone from the list loses its mark",
    { a: { hostname: "host-a", sinceMs: 400 } },
    [node("b", "ready")],
    9000,
    {},
  ],
  [
    "disconnected and unknown are not down (yet)",
    {},
    [
      node("a", "disconnected"),
      node("b", "unknown"),
    ],
    1000,
    {},
  ],
  ["a node with no hostname is named by its id", {}, [node("a", "down", "")], 5, {
    a: { hostname: "a", sinceMs: 5 },
  }],
  [
    "each node on its own",
    { a: { hostname: "host-a", sinceMs: 1 } },
    [node("a", "down"), node("b", "down"), node("c", "ready")],
    50,
    { a: { hostname: "host-a", sinceMs: 1 }, b: { hostname: "host-b", sinceMs: 50 } },
  ],
];
for (const [name, prev, nodes, now, want] of marks) {
  Deno.test(`nextDownMarks: ${name}`, () => {
    const got = nextDownMarks(new Map(Object.entries(prev)), nodes, now);
    assert.deepEqual(Object.fromEntries(got), want);
  });
}

const durations: Array<[string, number, number, number]> = [
  ["down since the last read: 0", 1000, 1000, 0],
  ["down up to the last read", 1000, 4500, 3500],
  ["a read older than the mark (clock step) is 0, never negative", 1000, 500, 0],
];
for (const [name, since, lastRead, want] of durations) {
  Deno.test(`downForMs: ${name}`, () => {
    assert.equal(downForMs({ hostname: "h", sinceMs: since }, lastRead), want);
  });
}

/** A watch over a node list the test sets, on a clock the test moves. */
function watch(graceMs: number) {
  let nodes: NodeInfo[] | Error = [];
  let now = 0;
  let reads = 0;
  const w = new NodeWatch({
    listNodes: () => {
      reads++;
      return nodes instanceof Error ? Promise.reject(nodes) : Promise.resolve(nodes);
    },
    graceMs,
    intervalMs: 2000,
    now: () => now,
    log: () => {},
  });
  return {
    w,
    set: (n: NodeInfo[] | Error) => void (nodes = n),
    at: (ms: number) => void (now = ms),
    reads: () => reads,
  };
}

Deno.test("NodeWatch.lost: only past the grace period, measured between reads", async () => {
  const t = watch(3000);
  t.set([node("a", "down")]);
  await t.w.refresh(); // first seen down at 0
  t.at(3000);
  await t.w.refresh();
  assert.equal(t.w.lost("a"), null, "down for exactly the grace period: not yet");
  t.at(3500);
  await t.w.refresh();
  assert.deepEqual(t.w.lost("a"), { hostname: "host-a", downMs: 3500 });
  assert.equal(t.w.lost("b"), null, "a node never seen down");
});

Deno.test("NodeWatch.lost: a failed read does not make a node look down for longer", async () => {
  const t = watch(3000);
  t.set([node("a", "down")]);
  await t.w.refresh();
  t.set(new Error("manager unreachable"));
  t.at(10_000);
  await t.w.refresh();
  assert.equal(t.w.lost("a"), null);
  t.set([node("a", "ready")]);
  t.at(20_000);
  await t.w.refresh();
  assert.equal(t.w.lost("a"), null, "back up");
});

Deno.test("NodeWatch.lost: reads the node list at most once per interval", async () => {
  const t = watch(1000);
  t.set([node("a", "down")]);
  t.w.lost("a");
  t.w.lost("a");
  await t.w.refresh(); // the read in flight
  assert.equal(t.reads(), 1);
  t.at(1999);
  t.w.lost("a");
  assert.equal(t.reads(), 1);
  t.at(2000);
  t.w.lost("a");
  await t.w.refresh();
  assert.equal(t.reads(), 2);
  assert.deepEqual(t.w.lost("a"), { hostname: "host-a", downMs: 2000 });
});
