/**
 * Drives one attempt of a started job (see attempt.ts for the sequence and
 * hooks/ for what happens around it): watches its task to the end through
 * container events or task polls, decides how the attempt ends with the pure
 * decideAttemptEnd and records it. Also used to re-attach to a job after an
 * orchestrator restart.
 * @module
 */
import { isTerminal, type JobRecord, type JobState, pause, REASON_CODES } from "../core/mod.ts";
import type { JobLog } from "../logs/mod.ts";
import type { JobStore } from "../store/mod.ts";
import {
  type ContainerEvent,
  NODE_ID_LABEL,
  type TaskInfo,
  TERMINAL_TASK_STATES,
} from "../swarm/mod.ts";
import type { Attempt, AttemptHook, RunnerDeps } from "./attempt.ts";
import {
  type AttemptFacts,
  decideAttemptEnd,
  type FinalState,
  type TaskOutcome,
} from "./attempt_end.ts";
import type { AttemptEndSource } from "./metrics.ts";
import { deadlineHook } from "./hooks/deadline_hook.ts";
import { gpuHook } from "./hooks/gpu_hook.ts";
import { logHook } from "./hooks/log_hook.ts";
import { memoryHook } from "./hooks/memory_hook.ts";
import { networkHook } from "./hooks/network_hook.ts";
import { nodeDownHook } from "./hooks/node_down_hook.ts";
import { partitionHook } from "./hooks/partition_hook.ts";
import { serviceHook } from "./hooks/service_hook.ts";

export { ATTEMPT_MARKER, type RunnerDeps } from "./attempt.ts";

/**
 * The hooks of one attempt, in order: partition before service (a job waits
 * for its share before its container exists), logs once the service exists,
 * the deadline and the node gone down while it runs, the memory limit and
 * the GPU when a failure is explained.
 */
export function attemptHooks(): AttemptHook[] {
  return [
    networkHook(),
    partitionHook(),
    serviceHook(),
    logHook(),
    deadlineHook(),
    nodeDownHook(),
    memoryHook(),
    gpuHook(),
  ];
}

/** Maps a terminal task to the job's final state. */
export function outcomeOf(task: TaskInfo): TaskOutcome {
  if (task.state === "complete") {
    return { state: "SUCCEEDED", exitCode: 0, reason: "", reasonCode: "" };
  }
  if (task.state === "failed") {
    if (task.exitCode === 137 || task.exitCode === 143) {
      const signal = task.exitCode === 137 ? "SIGKILL" : "SIGTERM";
      return {
        state: "FAILED",
        exitCode: task.exitCode,
        reason: `killed by ${signal} (container killed or removed)`,
        reasonCode: REASON_CODES.KILLED,
      };
    }
    if (task.exitCode !== null && task.exitCode !== 0) {
      return {
        state: "FAILED",
        exitCode: task.exitCode,
        reason: `exited with code ${task.exitCode}`,
        reasonCode: REASON_CODES.EXIT_CODE,
      };
    }
    return {
      state: "FAILED",
      exitCode: task.exitCode,
      reason: task.err || "task failed",
      // A task failed with no exit code never ran its process: the node's doing.
      reasonCode: task.exitCode === null ? REASON_CODES.TASK_FAILED : REASON_CODES.EXIT_CODE,
    };
  }
  if (task.state === "rejected") {
    return {
      state: "FAILED",
      exitCode: null,
      reason: `rejected by Swarm: ${task.err || task.message}`,
      reasonCode: REASON_CODES.REJECTED,
      taskErr: task.err,
    };
  }
  return {
    state: "FAILED",
    exitCode: null,
    reason: `task ${task.state} by Swarm (node drained or lost)${task.err ? ": " + task.err : ""}`,
    reasonCode: REASON_CODES.TASK_LOST,
  };
}

/** First poll interval after a nudge; it grows by half each poll up to the normal one. */
const NUDGE_POLL_MS = 20;

/**
 * Task poll interval of a job whose container events arrive: only a backstop
 * for an event the stream lost (a gap is announced and polled at once).
 */
const BACKSTOP_POLL_MS = 2000;

/**
 * The task state a container event stands for: `start` is running, `die`
 * is Swarm's `complete` or `failed` with the same exit code, which Swarm
 * itself shows only ~100 ms later.
 */
export function taskFromEvent(ev: ContainerEvent): TaskInfo {
  const state = ev.action === "start" ? "running" : ev.exitCode === 0 ? "complete" : "failed";
  return {
    id: "",
    state,
    exitCode: ev.action === "die" ? ev.exitCode : null,
    err: "",
    message: "",
    nodeId: ev.labels[NODE_ID_LABEL] ?? "",
    containerId: ev.containerId,
  };
}

/**
 * True for a die event of a process that exited by itself (code 0–127): the
 * task's outcome. A signal's exit (128 + N) may be the engine stopping, which
 * Swarm reports differently once it is back.
 */
export function isOwnExit(ev: ContainerEvent): boolean {
  return ev.action === "die" && ev.exitCode !== null && ev.exitCode < 128;
}

/** One job's driver; {@link start} returns at once, {@link done} settles at the end. */
export class JobRunner {
  /** The job id. */
  readonly jobId: string;
  #deps: RunnerDeps;
  #hooks: AttemptHook[];
  #stop = new AbortController();
  #cancelled = false;
  #detached = false;
  #done: Promise<void> | null = null;
  /** Interval of the next task poll when nudged (0: the normal interval). */
  #nudgeMs = 0;
  /** Ends the current poll wait early. */
  #wake: (() => void) | null = null;
  /** Container events of this attempt's service not looked at yet. */
  #events: ContainerEvent[] = [];
  /** Poll the task at once (an event gap, or no poll yet). */
  #pollNow = true;
  /** False once a die event was a signal's: from then on the task is polled. */
  #eventsTrusted = true;
  /** The end the job's runtime announced (see {@link runtimeExited}). */
  #runtimeExit: { attempt: number; exitCode: number } | null = null;

  /** Creates a runner for a job already SCHEDULED (or RUNNING, when re-attaching). */
  constructor(jobId: string, deps: RunnerDeps, hooks: AttemptHook[] = attemptHooks()) {
    this.jobId = jobId;
    this.#deps = deps;
    this.#hooks = hooks;
  }

  /** Starts the runner's loop. */
  start(imageId: string | null): void {
    this.#done = this.#run(imageId).catch((err) => {
      this.#deps.log(`job ${this.jobId}: runner failed: ${(err as Error).message}`);
    });
  }

  /**
   * Tells the runner its job's container is at a turning point (the runtime
   * made its first call, reported its result or closed its log stream): the
   * next task polls come at once and then quickly (20, 30, 45, ... ms up to
   * the normal interval), so the job is seen running or ended without
   * waiting out a whole poll interval. (A job whose container events reach
   * the orchestrator needs none.)
   */
  nudge(): void {
    this.#nudgeMs = NUDGE_POLL_MS;
    this.#wake?.();
  }

  /**
   * The runtime of `attempt` announced that the job's process exited with
   * `exitCode` by itself, every line stored, and that it exits with the same
   * code next. For a container on the manager's own engine the attempt ends
   * on it, ~30 ms before Docker reports the container's exit (see #runtimeEnd).
   */
  runtimeExited(attempt: number, exitCode: number): void {
    this.#runtimeExit = { attempt, exitCode };
    this.#wake?.();
  }

  /** Settles when the runner has finished (service removed) or detached. */
  get done(): Promise<void> {
    return this.#done ?? Promise.resolve();
  }

  /** Job was marked CANCELLED in the store: stop following and remove the service. */
  cancel(): Promise<void> {
    this.#cancelled = true;
    this.#stop.abort();
    return this.done;
  }

  /** Orchestrator shutdown: stop watching but leave the service running. */
  detach(): Promise<void> {
    this.#detached = true;
    this.#stop.abort();
    return this.done;
  }

  /** The attempt as hooks see it (see {@link Attempt}). */
  #attempt(job: JobRecord, log: JobLog, imageId: string | null): Attempt {
    const isCancelled = () => this.#cancelled;
    const isDetached = () => this.#detached;
    const a: Attempt = {
      jobId: this.jobId,
      deps: this.#deps,
      job,
      log,
      imageId,
      serviceId: job.serviceId,
      signal: this.#stop.signal,
      get cancelled() {
        return isCancelled();
      },
      get detached() {
        return isDetached();
      },
      expiredByUs: false,
      expiryResumed: false,
      containerId: "",
      nodeId: "",
      endedLocally: "",
      attemptStartSeq: -1,
      firstLineMs: null,
      transition: (from, to, patch) => this.#transition(from, to, patch),
      resume: (reason, reasonCode, refund = false) =>
        this.#transition(["SCHEDULED", "RUNNING"], "RESUMING", {
          reason,
          reasonCode,
          exitCode: null,
          ...(refund ? { attempts: Math.max(0, a.job.attempts - 1) } : {}),
        }) !== null,
      setFinal: (final) => this.#setFinal(a, final),
      facts: (outcome) => this.#facts(a, outcome),
    };
    return a;
  }

  async #run(imageId: string | null): Promise<void> {
    const d = this.#deps;
    const a = this.#attempt(d.store.mustGet(this.jobId), await d.logs.get(this.jobId), imageId);
    const prepared: AttemptHook[] = [];
    try {
      for (const hook of this.#hooks) {
        prepared.push(hook);
        const step = (await hook.prepare?.(a)) ?? "next";
        if (step === "stop") return;
        if (step === "end") return await this.#end(a, null);
      }
      for (const hook of this.#hooks) hook.started?.(a);
      await this.#end(a, await this.#watch(a));
    } finally {
      // A detached attempt keeps its service and partition for the next orchestrator.
      if (!a.detached) {
        for (const hook of prepared.reverse()) {
          await hook.cleanup?.(a).catch((err) =>
            d.log(`job ${this.jobId}: ${hook.name} clean-up failed: ${(err as Error).message}`)
          );
        }
      }
    }
  }

  /**
   * Follows the task until it ends (its outcome, judged by the hooks), a
   * hook's tick ends the attempt, or the runner is stopped (null).
   */
  async #watch(a: Attempt): Promise<TaskOutcome | null> {
    const d = this.#deps;
    const serviceId = a.serviceId;
    const unsubscribe = d.events?.subscribe(serviceId, {
      onEvent: (ev) => {
        this.#events.push(ev);
        this.#wake?.();
      },
      onGap: () => {
        this.#pollNow = true;
        this.#wake?.();
      },
    });
    let lastPollMs = -Infinity;
    try {
      while (!this.#stop.signal.aborted) {
        for (const hook of this.#hooks) {
          const ended = hook.tick?.(a);
          if (ended) {
            d.ends?.record("hook");
            return ended;
          }
        }
        // Events first: a container's exit is final, its start is news.
        const events = this.#events.splice(0);
        const died = events.find((ev) => ev.action === "die");
        let task: TaskInfo | null = null;
        let source: AttemptEndSource = "event";
        if (died && isOwnExit(died) && (await this.#swarmWantedItRunning(serviceId))) {
          task = taskFromEvent(died);
          a.endedLocally = died.containerId;
        } else if (died) {
          // Killed by a signal (a cancel, the deadline, the engine going down),
          // or stopped by Swarm (a drain: a job may exit 0 on its SIGTERM).
          // Swarm's task state says which; poll it as events were off.
          this.#eventsTrusted = false;
          this.#pollNow = true;
        }
        // A start event is news enough: no task read for it.
        const started = events.find((ev) => ev.action === "start");
        if (started) a.containerId = started.containerId;
        if (!task && !died) {
          task = this.#runtimeEnd(a);
          source = "runtime";
        }
        if (!task && started && !died) task = taskFromEvent(started);
        const covered = this.#covered(a.job);
        if (!task && (this.#pollNow || !covered || d.now() - lastPollMs >= BACKSTOP_POLL_MS)) {
          this.#pollNow = false;
          lastPollMs = d.now();
          source = "poll";
          try {
            task = await d.swarm.serviceTask(serviceId);
          } catch (err) {
            d.log(`job ${a.jobId}: task poll failed: ${(err as Error).message}`);
          }
          if (!task && !(await d.swarm.findService(serviceId).catch(() => ({ id: serviceId })))) {
            d.ends?.record("poll");
            return {
              state: "FAILED",
              exitCode: null,
              reason: "service removed outside Cumulus",
              reasonCode: REASON_CODES.SERVICE_REMOVED,
            };
          }
        }
        if (a.job.state === "SCHEDULED" && (started || task?.state === "running")) {
          a.job = this.#transition(["SCHEDULED"], "RUNNING", {
            startedAt: d.now(),
            nodeId: started?.labels[NODE_ID_LABEL] || task?.nodeId || "",
          }) ?? a.job;
        }
        if (task?.containerId) a.containerId = task.containerId;
        const seenOn = started?.labels[NODE_ID_LABEL] || task?.nodeId;
        if (seenOn) a.nodeId = seenOn;
        if (task && task.nodeId && task.nodeId !== a.job.nodeId && !isTerminal(a.job.state)) {
          a.job = d.store.update(a.jobId, { nodeId: task.nodeId });
        }
        if (task && TERMINAL_TASK_STATES.has(task.state)) {
          let outcome = outcomeOf(task);
          for (const hook of this.#hooks) outcome = hook.judge?.(a, outcome) ?? outcome;
          d.ends?.record(source);
          return outcome;
        }
        await this.#pollPause(this.#covered(a.job));
      }
      return null;
    } finally {
      unsubscribe?.();
    }
  }

  /**
   * The task as ended, from the end its runtime announced (see
   * {@link runtimeExited}), or null. Only for this attempt, an exit of the
   * job's own (0–127: a signal's waits for Docker and Swarm as a die event
   * does) and a container on the manager's own engine, whose log can be read
   * to its end at once (a remote container's reaches the service log later).
   * A runtime announces no end after a SIGTERM, so a stopped job (a drain)
   * is never taken for one that ended by itself.
   */
  #runtimeEnd(a: Attempt): TaskInfo | null {
    const ex = this.#runtimeExit;
    if (
      !ex || ex.attempt !== a.job.attempts || ex.exitCode < 0 || ex.exitCode >= 128 ||
      !a.containerId || !this.#covered(a.job)
    ) {
      return null;
    }
    a.endedLocally = a.containerId;
    return {
      id: "",
      state: ex.exitCode === 0 ? "complete" : "failed",
      exitCode: ex.exitCode,
      err: "",
      message: "",
      nodeId: a.job.nodeId,
      containerId: a.containerId,
    };
  }

  /**
   * True unless Swarm had decided to stop the task (its desired state is no
   * longer "running"): then the container's exit is Swarm's doing, not the
   * job's own end, and Swarm's final task state decides. One task read.
   */
  async #swarmWantedItRunning(serviceId: string): Promise<boolean> {
    try {
      const task = await this.#deps.swarm.serviceTask(serviceId);
      return !task?.desiredState || task.desiredState === "running";
    } catch {
      return false; // unknown: poll as without events
    }
  }

  /** Waits for the next task poll: the normal interval, or less after a nudge. */
  async #pollPause(covered: boolean): Promise<void> {
    if (this.#events.length > 0 || this.#pollNow) return;
    const normal = covered ? BACKSTOP_POLL_MS : this.#deps.pollIntervalMs;
    // A nudge hurries polls of a job whose events do not reach us; events need none.
    if (covered) this.#nudgeMs = 0;
    const ms = this.#nudgeMs > 0 ? Math.min(this.#nudgeMs, normal) : normal;
    if (this.#nudgeMs > 0) {
      this.#nudgeMs = this.#nudgeMs * 1.5 >= normal ? 0 : this.#nudgeMs * 1.5;
    }
    const wake = new AbortController();
    this.#wake = () => wake.abort();
    try {
      await pause(ms, AbortSignal.any([wake.signal, this.#stop.signal]));
    } finally {
      this.#wake = null;
    }
  }

  /** Whether this job's container events reach us, so polls are only a backstop. */
  #covered(job: JobRecord): boolean {
    return this.#eventsTrusted && (this.#deps.events?.covers(job.nodeId) ?? false);
  }

  /**
   * The attempt is over (`ended`: how its task ended, null when it was never
   * seen ending): the hooks finish reading and explaining it, then the end
   * is decided and recorded.
   */
  async #end(a: Attempt, ended: TaskOutcome | null): Promise<void> {
    for (const hook of this.#hooks) await hook.ended?.(a, ended);
    if (decideAttemptEnd(a.facts(ended)).kind === "detach") {
      a.log.close();
      return;
    }
    let outcome = ended;
    for (const hook of this.#hooks) {
      if (outcome && hook.explain) outcome = await hook.explain(a, outcome);
    }
    const end = decideAttemptEnd(a.facts(outcome));
    switch (end.kind) {
      case "resume":
        // Recorded before the service goes; the scheduler starts the next attempt,
        // which continues the log. A cancel that won the race completes it.
        if (a.resume(end.reason, end.reasonCode, end.refund)) a.log.close();
        else a.log.markComplete();
        break;
      case "continue":
        a.log.close();
        break;
      case "final":
        a.log.markComplete();
        a.setFinal(end.final);
        break;
      case "leave":
        a.log.markComplete();
        break;
      case "detach":
        a.log.close();
        break;
    }
  }

  /** What the runner knows now, for {@link decideAttemptEnd}. */
  #facts(a: Attempt, outcome: TaskOutcome | null): AttemptFacts {
    return {
      outcome,
      cancelled: this.#cancelled,
      detached: this.#detached,
      expiredByUs: a.expiredByUs,
      expiryResumed: a.expiryResumed,
      job: this.#deps.store.get(this.jobId),
    };
  }

  #setFinal(a: Attempt, final: FinalState): void {
    // A short job can end between two polls and never be seen running: its
    // first log line (or its end) is then the best start time there is.
    const job = this.#deps.store.get(this.jobId);
    const startedAt = job?.startedAt ??
      (final.exitCode !== null
        ? Math.min(a.firstLineMs ?? this.#deps.now(), this.#deps.now())
        : null);
    this.#transition(["SCHEDULED", "RUNNING", "RESUMING"], final.state, {
      exitCode: final.exitCode,
      reason: final.reason,
      reasonCode: final.reasonCode,
      startedAt,
    });
  }

  #transition(
    from: JobState[],
    to: JobState,
    patch: Parameters<JobStore["transition"]>[3],
  ): JobRecord | null {
    try {
      const job = this.#deps.store.transition(this.jobId, from, to, patch, this.#deps.now());
      this.#deps.onChange(this.jobId);
      return job;
    } catch (err) {
      // Another actor (a cancel) moved the job first; its state stands.
      this.#deps.log(`job ${this.jobId}: ${(err as Error).message}`);
      return null;
    }
  }
}
