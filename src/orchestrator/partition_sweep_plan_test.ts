import assert from "node:assert/strict";
import { mockJob } from "../core/_mock.ts";
import type { JobRecord } from "../core/mod.ts";
import { type AgentPartition, type NodeInventory, withPartitions } from "../workers/mod.ts";
import { PENDING_PARTITION, planSweep, type SweepPlan } from "./partitions.ts";

const GIB = 1024 ** 3;
const A = "j-00000000000a";
const B = "j-00000000000b";

/** A live partition `id` of Chronos job `jobId` on device `device`. */
function part(id: string, jobId: string, device = 0, memory = 0.5): AgentPartition {
  return {
    id,
    device,
    memory,
    memoryBytes: memory * 16 * GIB,
    owner: "ada",
    jobId,
    startMs: 0,
    expiresAtMs: 600_000,
    durationS: 600,
  };
}

/** Node `id` with two 16 GiB devices holding `parts`; `agent` other than "ok" = unreachable. */
function node(id: string, parts: AgentPartition[], agent = "ok"): NodeInventory {
  const base: NodeInventory = {
    node: {
      id,
      hostname: id,
      state: "ready",
      availability: "active",
      role: "worker",
      labels: {},
      address: "",
      cpus: 2,
    },
    agent,
    access: "none",
    devices: [],
    partitions: [],
  };
  const dev = (index: number) => ({
    index,
    name: "gpu",
    memoryBytes: 16 * GIB,
    uuid: "",
    pciBusId: "",
    vendor: "",
  });
  return withPartitions(base, [dev(0), dev(1)], parts);
}

interface Case {
  name: string;
  nodes: NodeInventory[];
  jobs: JobRecord[];
  /** Releases as "node/partition" and re-creations as "node/job#member@device:memory". */
  release: string[];
  recreate: string[];
}

const NOW = 100_000;

const cases: Case[] = [
  {
    name: "a running job's own partition stays",
    nodes: [node("n1", [part("p-1", A)])],
    jobs: [mockJob({ id: A, partitionId: "p-1" })],
    release: [],
    recreate: [],
  },
  {
    name: "an ended job's partition goes",
    nodes: [node("n1", [part("p-1", A)])],
    jobs: [mockJob({ id: A, partitionId: "p-1", state: "SUCCEEDED" })],
    release: ["n1/p-1"],
    recreate: [],
  },
  {
    name: "an earlier attempt's partition goes; the current one stays",
    nodes: [node("n1", [part("p-old", A), part("p-new", A)])],
    jobs: [mockJob({ id: A, partitionId: "p-new", attempts: 2 })],
    release: ["n1/p-old"],
    recreate: [],
  },
  {
    name: "a partition on another node than the job's goes, even one it is placed for",
    nodes: [node("n1", [part("p-1", A)]), node("n2", [])],
    jobs: [mockJob({ id: A, state: "SCHEDULED", partitionId: PENDING_PARTITION, nodeId: "n2" })],
    release: ["n1/p-1"],
    recreate: [],
  },
  {
    name: "a placed job whose partition is being created keeps what the agent made",
    nodes: [node("n1", [part("p-1", A)])],
    jobs: [mockJob({ id: A, state: "SCHEDULED", partitionId: PENDING_PARTITION })],
    release: [],
    recreate: [],
  },
  {
    name: "partitions of no Cumulus job, and of jobs this store does not know, stay",
    nodes: [node("n1", [part("p-1", "train-7"), part("p-2", "")]), node("n2", [part("p-3", B)])],
    jobs: [],
    release: [],
    recreate: [],
  },
  {
    name: "a running job that lost its partition gets it again for the time left",
    nodes: [node("n1", [])],
    jobs: [mockJob({ id: A, partitionId: "p-1", deadlineMs: NOW + 30_000 })],
    release: [],
    recreate: [`n1/${A}#0@0:0.5/30s`],
  },
  {
    name: "an expired job that lost its partition is left to the deadline check",
    nodes: [node("n1", [])],
    jobs: [mockJob({ id: A, partitionId: "p-1", deadlineMs: NOW })],
    release: [],
    recreate: [],
  },
  {
    name: "only the lost member of a whole-GPU group is re-created, under its member id",
    nodes: [node("n1", [part("p-0", `${A}:g0`, 0, 1)])],
    jobs: [mockJob({
      id: A,
      partitionId: "p-0",
      partitionIds: ["p-0", "p-1"],
      gpuDevice: 0,
      gpuDevices: [0, 1],
      spec: { gpuMemory: 1, gpuCount: 2 },
    })],
    release: [],
    recreate: [`n1/${A}:g1#1@1:1/500s`],
  },
  {
    name: "nodes whose agent did not answer are left alone",
    nodes: [node("n1", [part("p-1", A)], "agent unreachable: timeout")],
    jobs: [mockJob({ id: A, partitionId: "p-2", state: "FAILED" })],
    release: [],
    recreate: [],
  },
  {
    name: "a job with no partition recorded (placement off) is not re-created",
    nodes: [node("n1", [])],
    jobs: [mockJob({ id: A, partitionId: "" })],
    release: [],
    recreate: [],
  },
];

function show(plan: SweepPlan): { release: string[]; recreate: string[] } {
  return {
    release: plan.release.map((r) => `${r.nodeId}/${r.partitionId}`),
    recreate: plan.recreate.map((r) =>
      `${r.nodeId}/${r.chronosJobId}#${r.member}@${r.device}:${r.memory}/${r.durationS}s`
    ),
  };
}

for (const c of cases) {
  Deno.test(`planSweep(): ${c.name}`, () => {
    const jobs = new Map(c.jobs.map((j) => [j.id, j]));
    const got = show(planSweep({ nodes: c.nodes, jobs, now: NOW }));
    assert.deepEqual(got, { release: c.release, recreate: c.recreate });
  });
}

Deno.test("planSweep() names the state of the job whose partition it releases", () => {
  const plan = planSweep({
    nodes: [node("n1", [part("p-1", A)])],
    jobs: new Map([[A, mockJob({ id: A, state: "CANCELLED" })]]),
    now: NOW,
  });
  assert.deepEqual(plan.release, [
    { nodeId: "n1", partitionId: "p-1", chronosJobId: A, state: "CANCELLED" },
  ]);
});
