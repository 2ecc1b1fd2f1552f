/**
 * The attempt sequence and the pure parts of the hooks: the runner calls the
 * hooks' steps in the documented order (a stopping prepare skips the rest,
 * clean-up runs in reverse for what was prepared, never on detach), the
 * deadline hook's decisions, the network hook's, and the node-down hook's. The Docker side of every hook is exercised by
 * the integration tests (tests/*), against the real engine.
 */
import assert from "node:assert/strict";
import { mockJob } from "../../core/_mock.ts";
import type { JobRecord } from "../../core/mod.ts";
import type { NodeInfo, TaskInfo } from "../../swarm/mod.ts";
import type { Attempt, AttemptHook, PrepareResult, RunnerDeps } from "../attempt.ts";
import {
  type AttemptFacts,
  decideAttemptEnd,
  type FinalState,
  type TaskOutcome,
} from "../attempt_end.ts";
import { runnerFixture } from "../_runner_fixture.ts";
import type { JobNetwork } from "../job_network.ts";
import { deadlineHook } from "./deadline_hook.ts";
import { networkHook } from "./network_hook.ts";
import { NodeWatch } from "../node_watch.ts";
import { nodeDownHook } from "./node_down_hook.ts";
import { partitionHook } from "./partition_hook.ts";
import { logHook } from "./log_hook.ts";

/** A hook that records each step it is asked to take. */
function recorder(name: string, calls: string[], prepare: PrepareResult = "next"): AttemptHook {
  return {
    name,
    prepare: () => {
      calls.push(`${name}.prepare`);
      return Promise.resolve(prepare);
    },
    started: () => void calls.push(`${name}.started`),
    tick: () => {
      if (!calls.at(-1)?.endsWith(".tick")) calls.push(`${name}.tick`);
      return null;
    },
    judge: (_a, o) => {
      calls.push(`${name}.judge`);
      return o;
    },
    ended: () => {
      calls.push(`${name}.ended`);
      return Promise.resolve();
    },
    explain: (_a, o) => {
      calls.push(`${name}.explain`);
      return Promise.resolve(o);
    },
    cleanup: () => {
      calls.push(`${name}.cleanup`);
      return Promise.resolve();
    },
  };
}

/** A runner over a real store and log, with a task that completes on the second poll. */
async function runWith(hooks: AttemptHook[], opts: { detachAfterMs?: number } = {}) {
  let polls = 0;
  const f = await runnerFixture({
    serviceTask: (): Promise<TaskInfo> =>
      Promise.resolve({
        id: "t1",
        state: ++polls >= 2 ? "complete" : "running",
        exitCode: polls >= 2 ? 0 : null,
        err: "",
        message: "",
        nodeId: "n1",
        containerId: "c1",
      }),
    findService: () => Promise.resolve({ id: "s1", name: "", labels: {} }),
  }, hooks);
  f.runner.start("sha256:x");
  if (opts.detachAfterMs !== undefined) {
    await new Promise((r) => setTimeout(r, opts.detachAfterMs));
    await f.runner.detach();
  }
  return await f.finish();
}

Deno.test("runner: hooks' steps run in order; clean-up in reverse", async () => {
  const calls: string[] = [];
  const job = await runWith([recorder("a", calls), recorder("b", calls)]);
  assert.equal(job.state, "SUCCEEDED");
  assert.deepEqual(calls, [
    "a.prepare",
    "b.prepare",
    "a.started",
    "b.started",
    "a.tick",
    "a.judge",
    "b.judge",
    "a.ended",
    "b.ended",
    "a.explain",
    "b.explain",
    "b.cleanup",
    "a.cleanup",
  ]);
});

Deno.test("runner: a prepare that stops skips the later hooks; only what was prepared is cleaned up", async () => {
  const calls: string[] = [];
  await runWith([recorder("a", calls), recorder("b", calls, "stop"), recorder("c", calls)]);
  assert.deepEqual(calls, ["a.prepare", "b.prepare", "b.cleanup", "a.cleanup"]);
});

Deno.test("runner: a detached attempt is not cleaned up (its service and partition stay)", async () => {
  const calls: string[] = [];
  const slow: AttemptHook = {
    name: "slow",
    // Never lets the task be looked at: the runner is detached while it waits.
    prepare: (a) =>
      new Promise((r) => a.signal.addEventListener("abort", () => r("end"), { once: true })),
    cleanup: () => {
      calls.push("slow.cleanup");
      return Promise.resolve();
    },
  };
  const job = await runWith([slow], { detachAfterMs: 50 });
  assert.deepEqual(calls, []);
  assert.equal(job.state, "SCHEDULED", "nothing recorded on detach");
});

/** An attempt for the deadline hook: records what it was asked to record. */
function attemptAt(job: JobRecord, nowMs: number) {
  const recorded: string[] = [];
  const a = {
    jobId: job.id,
    job,
    deps: { now: () => nowMs, stopGracePeriodS: 10 } as RunnerDeps,
    expiredByUs: false,
    expiryResumed: false,
    resume: (reason: string) => {
      recorded.push(`RESUMING: ${reason}`);
      return true;
    },
    setFinal: (f: FinalState) => void recorded.push(`${f.state}: ${f.reason}`),
    facts: (outcome: TaskOutcome | null): AttemptFacts => ({
      outcome,
      cancelled: false,
      detached: false,
      expiredByUs: false,
      expiryResumed: false,
      job,
    }),
  } as unknown as Attempt;
  return { a, recorded };
}

const FAILED: TaskOutcome = {
  state: "FAILED",
  exitCode: 143,
  reason: "killed by SIGTERM",
  reasonCode: "KILLED",
};
const judged: Array<[string, Partial<JobRecord>, number, TaskOutcome, string]> = [
  [
    "a failure within 1 s of the deadline is its expiry",
    { deadlineMs: 10_000 },
    9_500,
    FAILED,
    "EXPIRED",
  ],
  [
    "a failure long before the deadline stays a failure",
    { deadlineMs: 10_000 },
    5_000,
    FAILED,
    "FAILED",
  ],
  ["a job without a deadline never expires", { deadlineMs: 0 }, 99_000, FAILED, "FAILED"],
  [
    "a success at the deadline is a success",
    { deadlineMs: 10_000 },
    10_000,
    { state: "SUCCEEDED", exitCode: 0, reason: "", reasonCode: "" },
    "SUCCEEDED",
  ],
];
for (const [name, over, now, outcome, want] of judged) {
  Deno.test(`deadlineHook.judge: ${name}`, () => {
    const { a } = attemptAt(mockJob(over), now);
    assert.equal(deadlineHook().judge!(a, outcome).state, want);
  });
}

Deno.test("deadlineHook.tick: nothing until deadline + grace + 1 s, then EXPIRED recorded by the orchestrator", () => {
  const job = mockJob({ deadlineMs: 10_000, spec: { duration: 10 } });
  const before = attemptAt(job, 10_000 + 10_000 + 1_000);
  assert.equal(deadlineHook().tick!(before.a), null);
  assert.deepEqual(before.recorded, []);
  const after = attemptAt(job, 10_000 + 10_000 + 1_001);
  const outcome = deadlineHook().tick!(after.a);
  assert.equal(outcome?.state, "EXPIRED");
  assert.equal(after.a.expiredByUs, true);
  assert.equal(after.recorded.length, 1);
  assert.match(
    after.recorded[0],
    /^EXPIRED: duration of 10 s is over: stopped by the orchestrator/,
  );
});

/** An attempt for the network hook, over a jobs' network that renews as told. */
function attemptOnNetwork(renews: boolean | Error) {
  const asked: string[] = [];
  const network = {
    name: "cumulus-jobs-1",
    renew: (id: string) => {
      asked.push(id);
      return renews instanceof Error ? Promise.reject(renews) : Promise.resolve(renews);
    },
  } as unknown as JobNetwork;
  const a = {
    jobId: "j-1",
    deps: { network, log: () => {} } as unknown as RunnerDeps,
  } as unknown as Attempt;
  return { a, asked };
}

const REJECTED_STALE: TaskOutcome = {
  state: "FAILED",
  exitCode: null,
  reason: "rejected by Swarm: network xl3n1ccbsgenfqy1d3j5ga3hp exists",
  reasonCode: "REJECTED",
  taskErr: "network xl3n1ccbsgenfqy1d3j5ga3hp exists",
};
const networkCases: Array<[string, TaskOutcome, boolean | Error, string, string[]]> = [
  ["a stale copy of our network: renewed, NETWORK_STALE", REJECTED_STALE, true, "NETWORK_STALE", [
    "xl3n1ccbsgenfqy1d3j5ga3hp",
  ]],
  ["a network that is not ours stays REJECTED", REJECTED_STALE, false, "REJECTED", [
    "xl3n1ccbsgenfqy1d3j5ga3hp",
  ]],
  ["a renewal Docker refused stays REJECTED", REJECTED_STALE, new Error("down"), "REJECTED", [
    "xl3n1ccbsgenfqy1d3j5ga3hp",
  ]],
  [
    "another rejection is left alone",
    { ...REJECTED_STALE, reason: "rejected by Swarm: no such image", taskErr: "no such image" },
    true,
    "REJECTED",
    [],
  ],
  [
    "the same words as a job's exit are not a rejection",
    { ...REJECTED_STALE, reasonCode: "EXIT_CODE" },
    true,
    "EXIT_CODE",
    [],
  ],
];
for (const [name, outcome, renews, want, asked] of networkCases) {
  Deno.test(`networkHook.explain: ${name}`, async () => {
    const t = attemptOnNetwork(renews);
    const got = await networkHook().explain!(t.a, outcome);
    assert.equal(got.reasonCode, want);
    assert.deepEqual(t.asked, asked);
    if (want === "NETWORK_STALE") assert.match(got.reason, /made cumulus-jobs-1$/);
  });
}

/** An attempt on node `nodeId`, with a node watch whose list the test gives. */
async function attemptOnNode(
  nodeId: string,
  nodes: NodeInfo[],
  downForMs: number,
  recordNodeId = nodeId,
) {
  let now = 1_000;
  const watch = new NodeWatch({
    listNodes: () => Promise.resolve(nodes),
    graceMs: 3000,
    now: () => now,
    log: () => {},
  });
  await watch.refresh();
  now += downForMs;
  await watch.refresh();
  const logged: string[] = [];
  const a = {
    jobId: "j-1",
    nodeId,
    job: mockJob({ nodeId: recordNodeId, attempts: 1 }),
    deps: { nodes: watch, log: (m: string) => logged.push(m) } as unknown as RunnerDeps,
  } as unknown as Attempt;
  return { a, logged };
}

const worker = (state: string): NodeInfo => ({
  id: "n2",
  hostname: "w1",
  state,
  availability: "active",
  role: "worker",
  labels: {},
  address: "198.18.0.2",
  cpus: 2,
});
const nodeDownCases: Array<[string, string, NodeInfo[], number, string | null, string?]> = [
  ["a node down past the grace period: lost", "n2", [worker("down")], 3500, "TASK_LOST"],
  ["a node down within the grace period: nothing yet", "n2", [worker("down")], 3000, null],
  ["a node that is ready: nothing", "n2", [worker("ready")], 60_000, null],
  ["a job not placed yet: nothing", "", [worker("down")], 60_000, null],
  // A resumed job's record names the node of its previous attempt until its task is seen.
  ["an attempt not seen on a node yet: nothing", "", [worker("down")], 60_000, null, "n2"],
  ["another node down: nothing", "n1", [worker("down")], 60_000, null],
];
for (const [name, nodeId, nodes, downMs, want, recordNodeId] of nodeDownCases) {
  Deno.test(`nodeDownHook.tick: ${name}`, async () => {
    const { a, logged } = await attemptOnNode(nodeId, nodes, downMs, recordNodeId ?? nodeId);
    const got = nodeDownHook().tick!(a);
    assert.equal(got?.reasonCode ?? null, want);
    if (want) {
      assert.equal(got?.reason, "node w1 unreachable for 4 s (Swarm marks it down)");
      assert.equal(got?.state, "FAILED");
      assert.match(logged.join("\n"), /attempt 1 ends: node w1 unreachable/);
      // An infrastructure failure: a job that may resume does.
      const job = mockJob({ attempts: 1, spec: { resume: true, maxAttempts: 3 } });
      const end = decideAttemptEnd({
        outcome: got,
        cancelled: false,
        detached: false,
        expiredByUs: false,
        expiryResumed: false,
        job,
      });
      assert.deepEqual(end, {
        kind: "resume",
        reason: "attempt 1 node w1 unreachable for 4 s (Swarm marks it down); resuming",
        reasonCode: "TASK_LOST",
      });
    } else {
      assert.deepEqual(logged, []);
    }
  });
}

Deno.test("nodeDownHook.tick: no node watch (node_down_grace 0): nothing", () => {
  const a = {
    jobId: "j-1",
    nodeId: "n2",
    job: mockJob({ nodeId: "n2" }),
    deps: { log: () => {} } as unknown as RunnerDeps,
  } as unknown as Attempt;
  assert.equal(nodeDownHook().tick!(a), null);
});

for (
  const [name, down, want] of [
    ["a partition on a node that is up is released", false, ["j-1"]],
    ["a partition on a node down past the grace period is left to the sweep", true, []],
  ] as Array<[string, boolean, string[]]>
) {
  Deno.test(`partitionHook.cleanup: ${name}`, async () => {
    const { a } = await attemptOnNode("n2", [worker(down ? "down" : "ready")], 3500);
    const released: string[] = [];
    const job = mockJob({ id: "j-1", nodeId: "n2", state: "RESUMING", partitionId: "p1" });
    Object.assign(a.deps, {
      store: { get: () => job },
      partitions: { release: (j: JobRecord) => Promise.resolve(void released.push(j.id)) },
    });
    await partitionHook().cleanup!(a);
    assert.deepEqual(released, want);
  });
}

Deno.test("logHook.ended: a node that is down is not asked for its last lines (Docker would wait)", async () => {
  const { a, logged } = await attemptOnNode("n2", [worker("down")], 3500);
  const asked: string[] = [];
  // Asked, the reads fail (a real one would wait without end), so the test fails, not hangs.
  const refuse = () => Promise.reject(new Error("no answer"));
  Object.assign(a, {
    serviceId: "s1",
    expiredByUs: false,
    signal: new AbortController().signal,
    log: { lastDocker: null, lastMarkerSeq: 0, lastSeq: 0, read: () => Promise.resolve([]) },
  });
  Object.assign(a.deps, {
    swarm: {
      async *followLogs(_id: string, o: { signal: AbortSignal }) {
        await new Promise((r) => o.signal.addEventListener("abort", r, { once: true }));
        yield* [];
      },
      readLogs: () => (asked.push("readLogs"), refuse()),
      readContainerLogs: () => (asked.push("readContainerLogs"), refuse()),
    },
  });
  const hook = logHook();
  hook.started!(a);
  await hook.ended!(a, {
    state: "FAILED",
    exitCode: null,
    reason: "lost",
    reasonCode: "TASK_LOST",
  });
  assert.deepEqual(asked, []);
  assert.match(logged.join("\n"), /node w1 is down; its last lines are not read/);
});
