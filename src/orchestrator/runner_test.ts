import assert from "node:assert/strict";
import type { JobRecord } from "../core/mod.ts";
import type { ContainerEvent, TaskInfo } from "../swarm/mod.ts";
import { logHook } from "./hooks/log_hook.ts";
import { runnerFixture } from "./_runner_fixture.ts";
import { NodeWatch } from "./node_watch.ts";
import { attemptHooks, isOwnExit, outcomeOf, taskFromEvent } from "./runner.ts";
import type { TaskEventSource, TaskListener } from "./task_events.ts";

function ev(action: "start" | "die", exitCode: number | null): ContainerEvent {
  return {
    action,
    containerId: "c1",
    labels: { "com.docker.swarm.node.id": "n1", "com.docker.swarm.service.id": "s1" },
    exitCode,
    timeMs: 5,
  };
}

const task = (over: Partial<TaskInfo>): TaskInfo => ({
  id: "",
  state: "running",
  exitCode: null,
  err: "",
  message: "",
  nodeId: "n1",
  containerId: "c1",
  ...over,
});

const fromEvents: Array<[string, ContainerEvent, TaskInfo]> = [
  ["start is running on its node", ev("start", null), task({})],
  ["exit 0 is complete", ev("die", 0), task({ state: "complete", exitCode: 0 })],
  ["exit 3 is failed with 3", ev("die", 3), task({ state: "failed", exitCode: 3 })],
  ["SIGKILL is failed with 137", ev("die", 137), task({ state: "failed", exitCode: 137 })],
];
for (const [name, e, want] of fromEvents) {
  Deno.test(`taskFromEvent: ${name}`, () => assert.deepEqual(taskFromEvent(e), want));
}

Deno.test("taskFromEvent: a die event maps to the same outcome as Swarm's task", () => {
  for (const code of [0, 1, 3, 137, 143]) {
    const swarm = task({ state: code === 0 ? "complete" : "failed", exitCode: code });
    assert.deepEqual(outcomeOf(taskFromEvent(ev("die", code))), outcomeOf(swarm), `exit ${code}`);
  }
});

const own: Array<[ContainerEvent, boolean]> = [
  [ev("die", 0), true],
  [ev("die", 127), true],
  [ev("die", 128), false],
  [ev("die", 143), false],
  [ev("die", null), false],
  [ev("start", null), false],
];
for (const [e, want] of own) {
  Deno.test(`isOwnExit: ${e.action} ${e.exitCode} → ${want}`, () =>
    assert.equal(isOwnExit(e), want));
}

const outcomes: Array<[string, TaskInfo, ReturnType<typeof outcomeOf>]> = [
  ["complete", task({ state: "complete", exitCode: 0 }), {
    state: "SUCCEEDED",
    exitCode: 0,
    reason: "",
    reasonCode: "",
  }],
  ["exit 3", task({ state: "failed", exitCode: 3 }), {
    state: "FAILED",
    exitCode: 3,
    reason: "exited with code 3",
    reasonCode: "EXIT_CODE",
  }],
  ["SIGTERM is infrastructure", task({ state: "failed", exitCode: 143 }), {
    state: "FAILED",
    exitCode: 143,
    reason: "killed by SIGTERM (container killed or removed)",
    reasonCode: "KILLED",
  }],
  ["no exit code is infrastructure", task({ state: "failed", err: "oci runtime" }), {
    state: "FAILED",
    exitCode: null,
    reason: "oci runtime",
    reasonCode: "TASK_FAILED",
  }],
  ["rejected is the job's own", task({ state: "rejected", err: "no such image" }), {
    state: "FAILED",
    exitCode: null,
    reason: "rejected by Swarm: no such image",
    reasonCode: "REJECTED",
    taskErr: "no such image",
  }],
  ["orphaned is infrastructure", task({ state: "orphaned" }), {
    state: "FAILED",
    exitCode: null,
    reason: "task orphaned by Swarm (node drained or lost)",
    reasonCode: "TASK_LOST",
  }],
];
for (const [name, t, want] of outcomes) {
  Deno.test(`outcomeOf: ${name}`, () => assert.deepEqual(outcomeOf(t), want));
}

/**
 * A started runner over the log hook whose container events (node n1) the
 * test delivers with `emit`, and whose Swarm task reads answer `task()`;
 * `died` tells `task()` whether the container exited yet.
 */
async function watchedRunner(taskNow: (died: boolean) => TaskInfo) {
  let listener: TaskListener | null = null;
  let died = false;
  const events: TaskEventSource = {
    covers: (node) => node === "n1",
    subscribe: (_id, l) => {
      listener = l;
      return () => {};
    },
  };
  const f = await runnerFixture(
    {
      serviceTask: () => Promise.resolve(taskNow(died)),
      findService: () => Promise.resolve({ id: "s1", name: "", labels: {} }),
      readContainerLogs: () => Promise.resolve([]),
    },
    [logHook()],
    events,
  );
  f.runner.start(null);
  while (!listener) await new Promise((r) => setTimeout(r, 5));
  return {
    f,
    emit(e: ContainerEvent) {
      if (e.action === "die") died = true;
      (listener as TaskListener | null)?.onEvent(e);
    },
    async until(state: JobRecord["state"]) {
      while (f.store.mustGet(f.jobId).state !== state) await new Promise((r) => setTimeout(r, 5));
    },
  };
}

/**
 * A runner whose container exits 0 (a die event) while Swarm's desired
 * state for the task is `desired`; Swarm's own view then turns terminal.
 */
async function exitWhileSwarmWants(desired: string): Promise<JobRecord> {
  const r = await watchedRunner((died) =>
    task({
      // Before the exit: running. At it: still running in Swarm's view, with
      // `desired`. Later polls: what Swarm makes of it.
      state: died && desired !== "running" ? "shutdown" : "running",
      desiredState: died ? desired : "running",
    })
  );
  await r.until("RUNNING");
  r.emit(ev("die", 0));
  return await r.f.finish();
}

Deno.test("runner: a container's own exit 0 while Swarm wants it running is SUCCEEDED, from the event", async () => {
  const job = await exitWhileSwarmWants("running");
  assert.equal(job.state, "SUCCEEDED");
  assert.equal(job.exitCode, 0);
});

Deno.test("runner: an exit 0 after Swarm decided to stop the task (a drain) goes by Swarm's state", async () => {
  const job = await exitWhileSwarmWants("shutdown");
  assert.equal(job.state, "FAILED", "not SUCCEEDED: the job did not end by itself");
  assert.equal(job.reasonCode, "TASK_LOST");
});

/**
 * A running job whose runtime announces `announced` (attempt, exit code);
 * Swarm's view stays "running" until the container's die event, which comes
 * only when the announcement did not end the attempt (after 300 ms).
 */
async function runtimeAnnounces(
  announced: [number, number],
): Promise<{ job: JobRecord; diedFirst: boolean; ends: Record<string, number> }> {
  const r = await watchedRunner((died) =>
    task({ state: died ? "failed" : "running", exitCode: died ? 137 : null })
  );
  r.emit(ev("start", null));
  await r.until("RUNNING");
  r.f.runner.runtimeExited(...announced);
  await new Promise((res) => setTimeout(res, 300));
  const diedFirst = r.f.store.mustGet(r.f.jobId).state === "RUNNING";
  if (diedFirst) r.emit(ev("die", 137));
  return { job: await r.f.finish(), diedFirst, ends: r.f.ends.bySource };
}

Deno.test("runner: the runtime's announced exit 0 ends the attempt SUCCEEDED before the container's exit", async () => {
  const { job, diedFirst, ends } = await runtimeAnnounces([1, 0]);
  assert.equal(diedFirst, false);
  assert.deepEqual(ends, { runtime: 1, event: 0, poll: 0, hook: 0 });
  assert.equal(job.state, "SUCCEEDED");
  assert.equal(job.exitCode, 0);
});

Deno.test("runner: an announced exit 3 is FAILED with code 3", async () => {
  const { job, diedFirst } = await runtimeAnnounces([1, 3]);
  assert.equal(diedFirst, false);
  assert.equal(job.state, "FAILED");
  assert.equal(job.exitCode, 3);
  assert.equal(job.reasonCode, "EXIT_CODE");
});

for (
  const [name, announced] of [
    ["another attempt's announcement", [2, 0]],
    ["a signal's exit code (128 + N)", [1, 143]],
  ] as Array<[string, [number, number]]>
) {
  Deno.test(`runner: ${name} waits for the container's exit`, async () => {
    const { job, diedFirst, ends } = await runtimeAnnounces(announced);
    assert.equal(diedFirst, true);
    assert.equal(ends.runtime, 0);
    assert.equal(job.state, "FAILED");
    assert.equal(job.exitCode, 137);
  });
}

Deno.test("runner: a task still 'running' on a node Swarm marks down ends as lost after the grace period", async () => {
  const nodes = new NodeWatch({
    listNodes: () =>
      Promise.resolve([{
        id: "n2",
        hostname: "w1",
        state: "down",
        availability: "active",
        role: "worker",
        labels: {},
        address: "",
        cpus: 1,
      }]),
    graceMs: 100,
    intervalMs: 20,
    now: Date.now,
    log: () => {},
  });
  // Swarm keeps the last state the node reported.
  const f = await runnerFixture(
    {
      serviceTask: () => Promise.resolve(task({ nodeId: "n2" })),
      findService: () => Promise.resolve({ id: "s1", name: "", labels: {} }),
    },
    attemptHooks().filter((h) => h.name === "node-down"),
    undefined,
    { nodes },
  );
  const started = Date.now();
  f.runner.start("sha256:x");
  // Without the hook nothing would end it: stopped after 5 s, it fails the asserts below.
  const bound = setTimeout(() => f.runner.cancel(), 5000);
  const job = await f.finish();
  clearTimeout(bound);
  assert.equal(job.state, "FAILED", "a job that may not resume fails");
  assert.equal(job.reasonCode, "TASK_LOST");
  assert.match(job.reason, /^node w1 unreachable for \d+ s \(Swarm marks it down\)$/);
  assert.equal(job.nodeId, "n2");
  assert.equal(f.ends.bySource.hook, 1);
  assert.ok(Date.now() - started >= 100, "not before the grace period");
});
