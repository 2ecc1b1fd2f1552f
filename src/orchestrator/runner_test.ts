import assert from "node:assert/strict";
import type { ContainerEvent, TaskInfo } from "../swarm/mod.ts";
import { isOwnExit, outcomeOf, taskFromEvent } from "./runner.ts";

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
