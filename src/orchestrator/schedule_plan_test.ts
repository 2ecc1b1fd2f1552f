import assert from "node:assert/strict";
import { mockJob } from "../core/_mock.ts";
import type { JobRecord } from "../core/mod.ts";
import type { NodeCapacity } from "../scheduler/mod.ts";
import {
  imagesToResolve,
  missingImageReason,
  planSchedule,
  type ScheduleInput,
} from "./schedule_plan.ts";

const IMG = "cumulus-job:latest";
const IMAGES = new Map([[IMG, "sha256:aaa"]]);

function queued(n: number, over: Parameters<typeof mockJob>[0] = {}): JobRecord {
  return mockJob({
    id: `j-${String(n).padStart(12, "0")}`,
    seq: n,
    state: "QUEUED",
    attempts: 0,
    nodeId: "",
    ...over,
    spec: { gpuMemory: 0.5, ...over.spec },
  });
}

function node(id: string, ...free: number[]): NodeCapacity {
  return {
    nodeId: id,
    hostname: id,
    role: "worker",
    labels: {},
    schedulable: true,
    devices: free.map((f, index) => ({ index, name: "gpu", memoryBytes: 80 * 2 ** 30, free: f })),
  };
}

function input(over: Partial<ScheduleInput>): ScheduleInput {
  return {
    freeSlots: 10,
    resuming: [],
    queued: [],
    runningByUser: new Map(),
    capacities: null,
    images: IMAGES,
    ...over,
  };
}

/** The plan as short strings, e.g. "j-…01 SCHEDULED n1/0". */
function summary(i: ScheduleInput): string[] {
  const p = planSchedule(i);
  return [
    ...p.transitions.map((t) =>
      `${t.id.slice(-2)} ${t.to}` +
      (t.to === "SCHEDULED" && t.patch.nodeId ? ` ${t.patch.nodeId}/${t.patch.gpuDevices}` : "")
    ),
    ...p.reasons.map((r) => `${r.id.slice(-2)} waits: ${r.reason}`),
  ];
}

const cases: Array<[string, ScheduleInput, string[]]> = [
  ["no free slot: nothing", input({ freeSlots: 0, queued: [queued(1)] }), []],
  [
    "FIFO within the free slots",
    input({ freeSlots: 2, queued: [queued(3), queued(1), queued(2)] }),
    [
      "01 SCHEDULED",
      "02 SCHEDULED",
    ],
  ],
  [
    "fair share: the user with fewer running jobs goes first",
    input({
      freeSlots: 1,
      queued: [queued(1, { spec: { user: "ada" } }), queued(2, { spec: { user: "bob" } })],
      runningByUser: new Map([["ada", 3]]),
    }),
    ["02 SCHEDULED"],
  ],
  [
    "resuming jobs go before queued ones",
    input({ freeSlots: 1, queued: [queued(1)], resuming: [queued(9, { state: "RESUMING" })] }),
    ["09 SCHEDULED"],
  ],
  [
    "a missing image fails the job and keeps the slot",
    input({ freeSlots: 1, queued: [queued(1, { spec: { image: "gone:1" } }), queued(2)] }),
    ["01 FAILED", "02 SCHEDULED"],
  ],
  [
    "GPU shares are spent as the round places jobs",
    input({ queued: [queued(1), queued(2), queued(3)], capacities: [node("n1", 1.0)] }),
    [
      "01 SCHEDULED n1/0",
      "02 SCHEDULED n1/0",
      "03 waits: waiting: no device with 0.5 free (n1 gpu0: 0.00 free)",
    ],
  ],
  [
    "a job that does not fit waits while a smaller one behind it starts",
    input({
      queued: [queued(1, { spec: { gpuMemory: 0.8 } }), queued(2, { spec: { gpuMemory: 0.25 } })],
      capacities: [node("n1", 0.5)],
    }),
    ["02 SCHEDULED n1/0", "01 waits: waiting: no device with 0.8 free (n1 gpu0: 0.50 free)"],
  ],
  [
    "a waiting reason already recorded is not written again",
    input({
      queued: [queued(1, { reason: "waiting: no worker's agent answers (see cumulus workers)" })],
      capacities: [],
    }),
    [],
  ],
  [
    "no agent answers: the job waits and says so",
    input({ queued: [queued(1)], capacities: [] }),
    ["01 waits: waiting: no worker's agent answers (see cumulus workers)"],
  ],
];

for (const [name, i, want] of cases) {
  Deno.test(`planSchedule: ${name}`, () => assert.deepEqual(summary(i), want));
}

Deno.test("planSchedule: the SCHEDULED patch starts a fresh attempt, and leaves its input alone", () => {
  const caps = [node("n1", 1.0)];
  const resuming = queued(1, { state: "RESUMING", attempts: 2, reason: "node lost" });
  const plan = planSchedule(input({ resuming: [resuming], capacities: caps }));
  assert.deepEqual(plan.transitions[0], {
    id: resuming.id,
    from: "RESUMING",
    to: "SCHEDULED",
    imageId: "sha256:aaa",
    patch: {
      attempts: 3,
      reason: "",
      reasonCode: "",
      partitionId: "pending",
      partitionIds: [],
      deadlineMs: 0,
      serviceId: "",
      nodeId: "n1",
      gpuDevice: 0,
      gpuDevices: [0],
    },
  });
  assert.equal(caps[0].devices[0].free, 1.0);
  assert.deepEqual(plan.transitions.length, 1);
});

Deno.test("imagesToResolve asks once per distinct image", () => {
  const jobs = [queued(1), queued(2), queued(3, { spec: { image: "other:2" } })];
  assert.deepEqual(imagesToResolve({ resuming: [], queued: jobs }), [IMG, "other:2"]);
  assert.equal(missingImageReason("x:1"), 'image "x:1" not found on the Swarm manager');
});
