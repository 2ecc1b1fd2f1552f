import assert from "node:assert/strict";
import { pickJobs } from "./mod.ts";

const q = (id: string, user: string, seq: number) => ({ id, user, seq });

const cases: Array<[string, ReturnType<typeof q>[], Record<string, number>, number, string[]]> = [
  ["no slots", [q("a", "u", 1)], {}, 0, []],
  ["fifo for one user", [q("c", "u", 3), q("a", "u", 1), q("b", "u", 2)], {}, 2, ["a", "b"]],
  ["fewest running first", [q("a", "x", 1), q("b", "y", 2)], { x: 2 }, 1, ["b"]],
  [
    "alternates between users",
    [q("a1", "a", 1), q("a2", "a", 2), q("a3", "a", 3), q("b1", "b", 4)],
    {},
    3,
    ["a1", "b1", "a2"],
  ],
  ["tie goes to the earlier submission", [q("y", "y", 5), q("x", "x", 4)], {}, 1, ["x"]],
  ["more slots than jobs", [q("a", "u", 1)], {}, 5, ["a"]],
];
for (const [name, queued, running, slots, want] of cases) {
  Deno.test(`pickJobs: ${name}`, () => {
    assert.deepEqual(pickJobs(queued, new Map(Object.entries(running)), slots), want);
  });
}
