/**
 * Drives one started job: creates its Swarm service, relays its log into the
 * job log, follows its task to the end, records the outcome and removes the
 * service. Also used to re-attach to a job after an orchestrator restart.
 * @module
 */
import { CumulusError, isTerminal, type JobRecord, type JobState, pause } from "../core/mod.ts";
import type { JobLog, LastLine, LogHub } from "../logs/mod.ts";
import type { JobStore } from "../store/mod.ts";
import {
  type ContainerEvent,
  type DockerFrame,
  NODE_ID_LABEL,
  type SwarmClient,
  type TaskInfo,
  TERMINAL_TASK_STATES,
} from "../swarm/mod.ts";
import { Aligner } from "./align.ts";
import {
  type AttemptFacts,
  decideAttemptEnd,
  type FinalState,
  finalState,
  type TaskOutcome,
} from "./attempt_end.ts";
import { gpuOomOutcome, isMpsClientTerminated } from "./gpu_oom.ts";
import { type PartitionKeeper, PartitionWaitError, PENDING_PARTITION } from "./partitions.ts";
import { buildServiceRequest, type S3Settings, serviceName } from "./service_spec.ts";
import type { TaskEventSource } from "./task_events.ts";

/** What a runner needs from the orchestrator. */
export interface RunnerDeps {
  store: JobStore;
  logs: LogHub;
  swarm: SwarmClient;
  /** host:port job containers dial. */
  orchestratorAddress: string;
  /** Owning orchestrator instance id (service label). */
  instanceId: string;
  /** L2 checkpoint settings handed to the job. */
  s3?: S3Settings;
  /** Creates the partition of a job placed through partitions. */
  partitions?: PartitionKeeper;
  stopGracePeriodS: number;
  pollIntervalMs: number;
  /**
   * Container start and exit events (the manager's own node); a job whose
   * container runs where they are delivered is polled only as a backstop.
   */
  events?: TaskEventSource;
  now: () => number;
  /** Called after every state change of the job. */
  onChange: (jobId: string) => void;
  /** Diagnostic log (never given secrets). */
  log: (msg: string) => void;
}

/** Text that starts the log line written when a job's next attempt begins. */
export const ATTEMPT_MARKER = "[cumulus] attempt ";

function isMarker(line: LastLine | null): boolean {
  return line !== null && line.origin.kind === "marker" && line.text.startsWith(ATTEMPT_MARKER);
}

/** Maps a terminal task to the job's final state. */
export function outcomeOf(task: TaskInfo): TaskOutcome {
  if (task.state === "complete") return { state: "SUCCEEDED", exitCode: 0, reason: "" };
  if (task.state === "failed") {
    if (task.exitCode === 137 || task.exitCode === 143) {
      const signal = task.exitCode === 137 ? "SIGKILL" : "SIGTERM";
      return {
        state: "FAILED",
        exitCode: task.exitCode,
        reason: `killed by ${signal} (container killed or removed)`,
        infrastructure: true,
      };
    }
    if (task.exitCode !== null && task.exitCode !== 0) {
      return {
        state: "FAILED",
        exitCode: task.exitCode,
        reason: `exited with code ${task.exitCode}`,
      };
    }
    return {
      state: "FAILED",
      exitCode: task.exitCode,
      reason: task.err || "task failed",
      infrastructure: task.exitCode === null,
    };
  }
  if (task.state === "rejected") {
    return {
      state: "FAILED",
      exitCode: null,
      reason: `rejected by Swarm: ${task.err || task.message}`,
    };
  }
  return {
    state: "FAILED",
    exitCode: null,
    reason: `task ${task.state} by Swarm (node drained or lost)${task.err ? ": " + task.err : ""}`,
    infrastructure: true,
  };
}

/** Log lines searched for a GPU out-of-memory or MPS error when a GPU job fails. */
const GPU_TAIL_LINES = 60;

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

/** How long the log follow may deliver nothing before the runner drains instead. */
const CATCH_UP_STALL_MS = 5000;

/** One job's driver; {@link start} returns at once, {@link done} settles at the end. */
export class JobRunner {
  /** The job id. */
  readonly jobId: string;
  #deps: RunnerDeps;
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

  /** Creates a runner for a job already SCHEDULED (or RUNNING, when re-attaching). */
  constructor(jobId: string, deps: RunnerDeps) {
    this.jobId = jobId;
    this.#deps = deps;
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
   * waiting out a whole poll interval.
   */
  nudge(): void {
    this.#nudgeMs = NUDGE_POLL_MS;
    this.#wake?.();
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

  async #run(imageId: string | null): Promise<void> {
    const d = this.#deps;
    let job = d.store.mustGet(this.jobId);
    const log = await d.logs.get(this.jobId);
    let serviceId = job.serviceId;
    if (!serviceId && job.partitionId === PENDING_PARTITION) {
      try {
        if (!d.partitions) throw new PartitionWaitError("waiting: GPU placement is off");
        job = await d.partitions.acquire(job);
      } catch (err) {
        if (this.#stop.signal.aborted) return await this.#finish(log, "", null);
        const why = err instanceof PartitionWaitError ? err.message : String(err);
        // Back to the queue with the reason; the attempt was not used.
        const back = job.attempts > 1 ? "RESUMING" : "QUEUED";
        d.log(`job ${job.id}: no partition (${why}); back to ${back}`);
        this.#transition(["SCHEDULED"], back, {
          reason: why,
          attempts: job.attempts - 1,
          partitionId: "",
          deadlineMs: 0,
        });
        log.close();
        await pause(1000, this.#stop.signal);
        return;
      }
    }
    if (!serviceId) {
      try {
        const existing = await d.swarm.findService(serviceName(job.id));
        if (existing) serviceId = existing.id;
        else if (imageId) {
          const req = buildServiceRequest(job, {
            imageId,
            orchestratorAddress: d.orchestratorAddress,
            instanceId: d.instanceId,
            stopGracePeriodS: d.stopGracePeriodS,
            now: d.now(),
            s3: d.s3,
          });
          if (job.attempts > 1 && !isMarker(log.last)) {
            log.append({
              stream: "stderr",

              origin: { kind: "marker" },

              timeMs: d.now(),

              text: `${ATTEMPT_MARKER}${job.attempts} of ${job.spec.maxAttempts} starts`,
            });
          }

          serviceId = await d.swarm.createService(req);

          this.#attemptStartSeq = log.lastSeq;
        } else {
          throw new CumulusError("FAILED_PRECONDITION", `image ${job.spec.image} not found`);
        }
        job = d.store.update(job.id, { serviceId });
      } catch (err) {
        if (this.#stop.signal.aborted) return await this.#finish(log, "", null);
        const msg = err instanceof CumulusError ? err.message : String(err);
        this.#setFinal(
          finalState({ state: "FAILED", exitCode: null, reason: `could not start: ${msg}` }, ""),
        );
        log.markComplete();
        return;
      }
    }

    const follow = this.#follow(serviceId, log);
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
    let outcome: TaskOutcome | null = null;
    let expiredByUs = false;
    let lastPollMs = -Infinity;
    try {
      while (!this.#stop.signal.aborted) {
        if (job.deadlineMs > 0 && d.now() > job.deadlineMs + d.stopGracePeriodS * 1000 + 1000) {
          // Backstop for a node whose agent daemon did not stop the job at its deadline.
          outcome = {
            state: "EXPIRED",
            exitCode: null,
            reason: `duration of ${job.spec.duration} s is over: stopped by the orchestrator ` +
              `(the node's agent daemon had not stopped it within the grace period)`,
          };
          expiredByUs = true;
          // Recorded (EXPIRED, or RESUMING) before the service is stopped.
          const end = decideAttemptEnd(this.#facts(outcome));
          if (end.kind === "resume") this.#expiryResumed = this.#resume(end.reason);
          else if (end.kind === "final") this.#setFinal(end.final);
          this.#expiredByUs = true;
          break;
        }
        // Events first: a container's exit is final, its start is news.
        const events = this.#events.splice(0);
        const died = events.find((ev) => ev.action === "die");
        let task: TaskInfo | null = null;
        if (died && isOwnExit(died)) {
          task = taskFromEvent(died);
          this.#diedLocally = died.containerId;
        } else if (died) {
          // Killed by a signal: a cancel, the deadline, or the engine going
          // down. Swarm's task state says which; poll it as events were off.
          this.#eventsTrusted = false;
          this.#pollNow = true;
        }
        const covered = this.#covered(job);
        if (!task && (this.#pollNow || !covered || d.now() - lastPollMs >= BACKSTOP_POLL_MS)) {
          this.#pollNow = false;
          lastPollMs = d.now();
          try {
            task = await d.swarm.serviceTask(serviceId);
          } catch (err) {
            d.log(`job ${job.id}: task poll failed: ${(err as Error).message}`);
          }
          if (!task && !(await d.swarm.findService(serviceId).catch(() => ({ id: serviceId })))) {
            outcome = {
              state: "FAILED",
              exitCode: null,
              reason: "service removed outside Cumulus",
              infrastructure: true,
            };
            break;
          }
        }
        const started = events.find((ev) => ev.action === "start");
        if (!task && started) task = taskFromEvent(started);
        if (job.state === "SCHEDULED" && (started || task?.state === "running")) {
          job = this.#transition(["SCHEDULED"], "RUNNING", {
            startedAt: d.now(),
            nodeId: started?.labels[NODE_ID_LABEL] || task?.nodeId || "",
          }) ?? job;
        }
        if (task?.containerId) this.#containerId = task.containerId;
        if (task && task.nodeId && task.nodeId !== job.nodeId && !isTerminal(job.state)) {
          job = d.store.update(job.id, { nodeId: task.nodeId });
        }
        if (task && TERMINAL_TASK_STATES.has(task.state)) {
          outcome = outcomeOf(task);
          if (
            job.deadlineMs > 0 && outcome.state === "FAILED" && d.now() >= job.deadlineMs - 1000
          ) {
            outcome = {
              state: "EXPIRED",
              exitCode: outcome.exitCode,
              reason: `duration of ${job.spec.duration} s is over: stopped at its deadline by ` +
                `the node's agent daemon (${outcome.reason})`,
            };
          }
          break;
        }
        await this.#pollPause(this.#covered(job));
      }
    } finally {
      unsubscribe?.();
    }
    if (outcome && !expiredByUs && !this.#stop.signal.aborted) {
      await this.#catchUp(serviceId, log);
    }
    this.#followAbort.abort();
    await follow;
    await this.#finish(log, serviceId, outcome);
  }

  /**
   * After the task ended, Docker's log pipeline may still be far behind a job
   * that printed fast. Read the log's final frame and keep following until it
   * is stored; stop early only when the follow stream stalls.
   */
  async #catchUp(serviceId: string, log: JobLog): Promise<void> {
    let final: DockerFrame | undefined;
    try {
      // An end seen from the local engine's die event comes before Swarm has
      // relayed the last lines to the service log: the container's own log
      // has them.
      // Bounded: an engine that is going down may accept the call and never answer.
      const read = this.#diedLocally
        ? this.#deps.swarm.readContainerLogs(this.#diedLocally, 1)
        : this.#deps.swarm.readLogs(serviceId, 1);
      const timer = new AbortController();
      const got = await Promise.race([
        read,
        pause(CATCH_UP_STALL_MS, timer.signal).then(() => null),
      ]).finally(() => timer.abort());
      if (got === null) throw new Error(`no answer within ${CATCH_UP_STALL_MS} ms`);
      final = got[0];
    } catch (err) {
      this.#deps.log(
        `job ${this.jobId}: could not read the final log line: ${(err as Error).message}`,
      );
      return;
    }
    if (!final) return;
    const isFinal = () => {
      const last = log.lastDocker;
      return last !== null && last.origin.kind === "docker" && last.origin.ts === final.ts &&
        last.stream === final.stream &&
        last.text === final.text;
    };
    while (!isFinal() && !this.#stop.signal.aborted) {
      const before = log.lastSeq;
      const stall = new AbortController();
      const timer = setTimeout(() => stall.abort(), CATCH_UP_STALL_MS);
      await log.waitForMore(before, AbortSignal.any([stall.signal, this.#stop.signal]));
      clearTimeout(timer);
      if (log.lastSeq === before) {
        this.#deps.log(`job ${this.jobId}: log follow stalled; draining the rest`);
        return;
      }
    }
    // Docker's last line is stored, so is every line before it: no drain needed.
    this.#caughtUp = isFinal();
  }

  #followAbort = new AbortController();
  #expiredByUs = false;
  /** The follow stored Docker's final line of this attempt (see #catchUp). */
  #caughtUp = false;
  /** Container id, when this attempt's end came from the local engine's die event. */
  #diedLocally = "";

  /** The stored line to re-find in this attempt's Docker log, or null to take every line. */
  #alignBase(log: JobLog): LastLine | null {
    // Only Docker's own lines can be re-found in Docker's log; lines the
    // runtime streamed, and lines of an earlier attempt, cannot.
    const last = log.lastDocker;
    if (!last || last.seq < log.lastMarkerSeq) return null;
    if (this.#attemptStartSeq >= 0 && last.seq <= this.#attemptStartSeq) return null;
    return last;
  }

  async #follow(serviceId: string, log: JobLog): Promise<void> {
    const last = this.#alignBase(log);
    const lastMs = last ? await this.#lastTimeMs(log) : 0;
    const aligner = new Aligner(last, lastMs);
    // Re-read a little before the stored tail so it can be found again.
    const sinceSec = lastMs > 0 ? Math.max(1, Math.floor(lastMs / 1000) - 1) : undefined;
    try {
      for await (
        const frames of this.#deps.swarm.followLogs(serviceId, {
          sinceSec,
          signal: this.#followAbort.signal,
        })
      ) {
        this.#append(log, aligner.feed(frames));
      }
    } catch (err) {
      this.#deps.log(`job ${this.jobId}: log follow ended: ${(err as Error).message}`);
    }
  }

  async #lastTimeMs(log: JobLog): Promise<number> {
    const lines = await log.read(log.lastSeq - 1, 1);
    return lines[0]?.timeMs ?? 0;
  }

  #firstLineMs: number | null = null;
  #containerId = "";
  /** Log seq before this attempt's first line (-1: the stored tail is this attempt's). */
  #attemptStartSeq = -1;

  #append(log: JobLog, frames: DockerFrame[]): void {
    if (frames.length > 0 && this.#firstLineMs === null) this.#firstLineMs = frames[0].timeMs;
    for (const f of frames) {
      log.append({
        stream: f.stream,
        origin: { kind: "docker", ts: f.ts },
        timeMs: f.timeMs,
        text: f.text,
      });
    }
  }

  /** Reads what the follow stream had not delivered yet, from the log's tail. */
  async #drain(serviceId: string, log: JobLog, budgetMs: number): Promise<void> {
    const deadline = this.#deps.now() + budgetMs;
    let tail = 1000;
    for (;;) {
      let frames: DockerFrame[];
      try {
        frames = await this.#deps.swarm.readLogs(
          serviceId,
          this.#alignBase(log) ? tail : undefined,
        );
      } catch (err) {
        this.#deps.log(`job ${this.jobId}: log drain failed: ${(err as Error).message}`);
        return;
      }
      const aligner = new Aligner(this.#alignBase(log), 0);
      const fresh = aligner.feed(frames);
      if (aligner.matched) {
        this.#append(log, fresh);
        return;
      }
      if (frames.length < tail || this.#deps.now() > deadline) {
        // The stored tail is not in Docker's log: appending could duplicate.
        this.#deps.log(`job ${this.jobId}: drain could not align; kept stored log`);
        return;
      }
      tail *= 8;
    }
  }

  /** What the runner knows now, for {@link decideAttemptEnd}. */
  #facts(outcome: TaskOutcome | null): AttemptFacts {
    return {
      outcome,
      cancelled: this.#cancelled,
      detached: this.#detached,
      expiredByUs: this.#expiredByUs,
      expiryResumed: this.#expiryResumed,
      job: this.#deps.store.get(this.jobId),
    };
  }

  async #finish(log: JobLog, serviceId: string, ended: TaskOutcome | null): Promise<void> {
    const d = this.#deps;
    if (decideAttemptEnd(this.#facts(ended)).kind === "detach") {
      log.close();
      return;
    }
    if (serviceId && !this.#caughtUp) {
      await this.#drain(
        serviceId,
        log,
        this.#cancelled || ended?.state === "EXPIRED" ? 500 : 60_000,
      );
    }
    // Said by the job's last log lines: it ran out of its GPU partition, or
    // its GPU's MPS server faulted under it (infrastructure: it resumes).
    const outcome = ended && ended.state === "FAILED" && !this.#cancelled
      ? await this.#explainGpuFailure(log, ended)
      : ended;
    const end = decideAttemptEnd(this.#facts(outcome));
    switch (end.kind) {
      case "resume":
        // Recorded before the service goes; the scheduler starts the next attempt,
        // which continues the log. A cancel that won the race completes it.
        if (this.#resume(end.reason)) log.close();
        else log.markComplete();
        break;
      case "continue":
        log.close();
        break;
      case "final":
        log.markComplete();
        this.#setFinal(end.final);
        break;
      case "leave":
        log.markComplete();
        break;
      case "detach":
        log.close();
        return;
    }
    // A cancelled job's container is stopped directly too (when it runs on the
    // manager's engine): Swarm takes ~3 s to stop a removed service's task.
    // Waited for at most 1 s; a job that ignores SIGTERM is killed after the grace period.
    const stopping = (this.#cancelled || this.#expiredByUs) && this.#containerId
      ? d.swarm.stopContainer(this.#containerId, d.stopGracePeriodS).catch((err) => {
        d.log(`job ${this.jobId}: container stop failed: ${(err as Error).message}`);
        return false;
      })
      : Promise.resolve(false);
    if (serviceId) {
      try {
        await d.swarm.removeService(serviceId);
      } catch (err) {
        d.log(`job ${this.jobId}: service remove failed: ${(err as Error).message}`);
      }
    }
    await Promise.race([stopping, pause(1000)]);
  }

  /** Set once this attempt's expiry was recorded as RESUMING. */
  #expiryResumed = false;

  /** Records RESUMING with `reason`; false when another actor (a cancel) moved the job first. */
  #resume(reason: string): boolean {
    return this.#transition(["SCHEDULED", "RUNNING"], "RESUMING", { reason, exitCode: null }) !==
      null;
  }

  /**
   * A GPU job that exited non-zero after an out-of-memory error in its last
   * log lines ran past its partition: say so, with the partition's size. One
   * whose MPS server faulted (another client's fatal error ends every client
   * on that GPU) did not fail by itself: it is an infrastructure failure.
   */
  async #explainGpuFailure(log: JobLog, outcome: TaskOutcome): Promise<TaskOutcome> {
    const job = this.#deps.store.get(this.jobId);
    const keeper = this.#deps.partitions;
    if (!job || !keeper || !job.partitionId || !outcome.exitCode || outcome.infrastructure) {
      return outcome;
    }
    const lines = (await log.read(Math.max(0, log.lastSeq - GPU_TAIL_LINES), GPU_TAIL_LINES))
      .map((l) => l.text);
    if (isMpsClientTerminated(lines)) {
      return {
        ...outcome,
        reason: `its GPU's MPS server ended it (a fatal error of another job on the GPU); ` +
          `exited with code ${outcome.exitCode}`,
        infrastructure: true,
      };
    }
    const gpu = gpuOomOutcome(lines, outcome.exitCode, keeper.heldGpu(job));
    return gpu ? { ...outcome, ...gpu } : outcome;
  }

  #setFinal(final: FinalState): void {
    // A short job can end between two polls and never be seen running: its
    // first log line (or its end) is then the best start time there is.
    const job = this.#deps.store.get(this.jobId);
    const startedAt = job?.startedAt ??
      (final.exitCode !== null
        ? Math.min(this.#firstLineMs ?? this.#deps.now(), this.#deps.now())
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
