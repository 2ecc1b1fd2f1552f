/**
 * One follower of the manager engine's container events for every job of
 * this orchestrator: a job container's start and exit reach its runner
 * within milliseconds instead of at the next task poll (Swarm itself shows a
 * task's end ~100 ms after its container died). Containers on other nodes
 * are not on this engine's stream: their runners keep polling.
 * @module
 */
import { pause } from "../core/mod.ts";
import type { ContainerEvent, SwarmClient } from "../swarm/mod.ts";
import { SERVICE_ID_LABEL } from "../swarm/mod.ts";

/** What a runner listens to. */
export interface TaskListener {
  /** A container of the service started or died. */
  onEvent(ev: ContainerEvent): void;
  /** The stream was down for a while: events may have been missed; look now. */
  onGap(): void;
}

/** Where runners get container events from. */
export interface TaskEventSource {
  /** True while the stream is up and delivers the events of containers on `nodeId`. */
  covers(nodeId: string): boolean;
  /** Listens to the containers of `serviceId`; returns the unsubscribe call. */
  subscribe(serviceId: string, listener: TaskListener): () => void;
}

/** What the hub needs. */
export interface TaskEventHubDeps {
  swarm: Pick<SwarmClient, "containerEvents" | "localNodeId">;
  /** Label filter (`key=value`) of this orchestrator's job containers. */
  label: string;
  log: (msg: string) => void;
}

/** Longest wait before reconnecting a dropped event stream. */
const MAX_BACKOFF_MS = 5000;

/** Follows the events and fans them out by service id; see the module doc. */
export class TaskEventHub implements TaskEventSource {
  #d: TaskEventHubDeps;
  #listeners = new Map<string, Set<TaskListener>>();
  #stop = new AbortController();
  #loop: Promise<void> | null = null;
  #live = false;
  #nodeId = "";
  /** Events received since start (for tests and metrics). */
  received = 0;

  /** Creates a stopped hub; {@link start} connects it. */
  constructor(deps: TaskEventHubDeps) {
    this.#d = deps;
  }

  /** Learns the manager's node id and starts following; returns once the first connect was tried. */
  async start(): Promise<void> {
    this.#nodeId = await this.#d.swarm.localNodeId();
    let first: () => void = () => {};
    const tried = new Promise<void>((r) => first = r);
    this.#loop = this.#run(() => first());
    await tried;
  }

  /** Stops following. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  /** True while connected, for containers on the manager's own node. */
  covers(nodeId: string): boolean {
    return this.#live && nodeId !== "" && nodeId === this.#nodeId;
  }

  /** See {@link TaskEventSource.subscribe}. */
  subscribe(serviceId: string, listener: TaskListener): () => void {
    let set = this.#listeners.get(serviceId);
    if (!set) this.#listeners.set(serviceId, set = new Set());
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#listeners.get(serviceId) === set) {
        this.#listeners.delete(serviceId);
      }
    };
  }

  async #run(connected: () => void): Promise<void> {
    let backoff = 100;
    let gap = false;
    while (!this.#stop.signal.aborted) {
      try {
        const events = await this.#d.swarm.containerEvents(this.#d.label, this.#stop.signal);
        this.#live = true;
        connected();
        if (gap) {
          // Whatever happened while the stream was down: listeners look now.
          gap = false;
          this.#gap();
        }
        backoff = 100;
        for await (const ev of events) {
          this.received++;
          this.#dispatch(ev);
        }
      } catch (err) {
        if (!this.#stop.signal.aborted) {
          this.#d.log(`container events: ${(err as Error).message}; reconnecting`);
        }
      }
      connected();
      this.#live = false;
      if (this.#stop.signal.aborted) break;
      gap = true;
      this.#gap();
      await pause(backoff, this.#stop.signal).catch(() => {});
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
    this.#live = false;
  }

  #dispatch(ev: ContainerEvent): void {
    const set = this.#listeners.get(ev.labels[SERVICE_ID_LABEL] ?? "");
    if (!set) return;
    for (const l of [...set]) l.onEvent(ev);
  }

  #gap(): void {
    for (const set of this.#listeners.values()) for (const l of [...set]) l.onGap();
  }
}
