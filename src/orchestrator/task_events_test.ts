import assert from "node:assert/strict";
import type { ContainerEvent } from "../swarm/mod.ts";
import { TaskEventHub, type TaskListener } from "./task_events.ts";

/** A scripted event stream: each connect gets the next queue; push() feeds the open one. */
class ScriptedEngine {
  connects = 0;
  failNext = false;
  #push: ((ev: ContainerEvent | null) => void) | null = null;
  localNodeId() {
    return Promise.resolve("node-a");
  }
  containerEvents(_label: string, signal: AbortSignal): Promise<AsyncIterable<ContainerEvent>> {
    this.connects++;
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error("engine down"));
    }
    const queue: Array<ContainerEvent | null> = [];
    let wake: (() => void) | null = null;
    this.#push = (ev) => {
      queue.push(ev);
      wake?.();
    };
    signal.addEventListener("abort", () => this.#push?.(null));
    return Promise.resolve((async function* () {
      for (;;) {
        while (queue.length === 0) await new Promise<void>((r) => wake = r);
        const ev = queue.shift()!;
        if (ev === null) return;
        yield ev;
      }
    })());
  }
  /** Sends an event, or ends the stream (null). */
  push(ev: ContainerEvent | null) {
    this.#push!(ev);
  }
}

function ev(
  action: "start" | "die",
  service: string,
  exitCode: number | null = null,
): ContainerEvent {
  return {
    action,
    containerId: `c-${service}`,
    labels: { "com.docker.swarm.service.id": service, "com.docker.swarm.node.id": "node-a" },
    exitCode,
    timeMs: 1,
  };
}

function recorder(): TaskListener & { events: ContainerEvent[]; gaps: number } {
  const r = {
    events: [] as ContainerEvent[],
    gaps: 0,
    onEvent: (e: ContainerEvent) => r.events.push(e),
    onGap: () => r.gaps++,
  };
  return r;
}

const tick = () => new Promise((r) => setTimeout(r, 5));

Deno.test("TaskEventHub: events reach the listeners of their service only, until unsubscribed", async () => {
  const engine = new ScriptedEngine();
  const hub = new TaskEventHub({ swarm: engine, label: "x=y", log: () => {} });
  await hub.start();
  const a = recorder(), b = recorder();
  const offA = hub.subscribe("svc-a", a);
  hub.subscribe("svc-b", b);
  engine.push(ev("start", "svc-a"));
  engine.push(ev("die", "svc-b", 3));
  engine.push(ev("die", "svc-other", 0));
  await tick();
  assert.deepEqual(a.events.map((e) => e.action), ["start"]);
  assert.deepEqual(b.events.map((e) => [e.action, e.exitCode]), [["die", 3]]);
  offA();
  engine.push(ev("die", "svc-a", 0));
  await tick();
  assert.equal(a.events.length, 1);
  assert.equal(hub.received, 4);
  await hub.stop();
});

Deno.test("TaskEventHub: covers the manager's node only while connected; a drop is a gap", async () => {
  const engine = new ScriptedEngine();
  const logs: string[] = [];
  const hub = new TaskEventHub({ swarm: engine, label: "x=y", log: (m) => logs.push(m) });
  await hub.start();
  const r = recorder();
  hub.subscribe("svc-a", r);
  assert.equal(hub.covers("node-a"), true);
  assert.equal(hub.covers("node-b"), false);
  assert.equal(hub.covers(""), false);
  engine.failNext = true;
  engine.push(null); // the engine ends the stream; the reconnect fails once
  await tick();
  assert.equal(hub.covers("node-a"), false);
  assert.ok(r.gaps >= 1, "listeners are told to look at once");
  const deadline = Date.now() + 5000;
  while (!hub.covers("node-a") && Date.now() < deadline) await tick();
  assert.equal(hub.covers("node-a"), true, "reconnected");
  assert.equal(engine.connects, 3);
  assert.ok(r.gaps >= 2, "a reconnect after a gap is announced again");
  assert.ok(logs.some((l) => l.includes("engine down")));
  engine.push(ev("start", "svc-a"));
  await tick();
  assert.equal(r.events.length, 1);
  await hub.stop();
  assert.equal(hub.covers("node-a"), false);
});
