/**
 * The job state machine and queue: submission, scheduling within
 * MAX_CONCURRENT_JOBS (fair share between users), cancellation, watching,
 * and reconciliation with Swarm after a restart. Every transition is written
 * to the store before it is acted on.
 * @module
 */
import {
  type CheckpointMark,
  FailedPreconditionError,
  InvalidArgumentError,
  isTerminal,
  type JobRecord,
  type JobSpec,
  type JobState,
  type LogLine,
  REASON_CODES,
  ResourceExhaustedError,
  UnavailableError,
} from "../core/mod.ts";
import type { LogHub } from "../logs/mod.ts";
import type { JobStore, ListQuery } from "../store/mod.ts";
import type { SwarmClient } from "../swarm/mod.ts";
import type { PartitionKeeper } from "./partitions.ts";
import type { ImagePublisher } from "./image_publisher.ts";
import { AttemptEnds, ScheduleRounds } from "./metrics.ts";
import { JobRunner } from "./runner.ts";
import type { TaskEventSource } from "./task_events.ts";
import type { JobNetwork } from "./job_network.ts";
import { NodeWatch } from "./node_watch.ts";
import { imagesToResolve, planSchedule } from "./schedule_plan.ts";
import { pickJobs } from "../scheduler/mod.ts";
import { jobServicesOf, planReconcile } from "./reconcile_plan.ts";
import {
  INSTANCE_LABEL,
  JOB_LABEL,
  type JobIsolation,
  type S3Settings,
  serviceName,
} from "./service_spec.ts";
import { jobVolumesOf, planVolumeSweep } from "./volume_sweep_plan.ts";

/** Everything the manager uses, injected. */
export interface ManagerDeps {
  store: JobStore;
  logs: LogHub;
  swarm: SwarmClient;
  maxConcurrentJobs: number;
  maxQueuedJobs: number;
  /** Most QUEUED jobs of one user (default: no limit of its own). */
  maxQueuedJobsPerUser?: number;
  /** host:port job containers dial (grpcs://host:port when TLS). */
  orchestratorAddress: string;
  /** PEM of the CA that signed the orchestrator's TLS certificate, for the job's runtime. */
  orchestratorCaPem?: string;
  stopGracePeriodS: number;
  pollIntervalMs: number;
  /** Container events of the manager's node (see JobRunner's `events`). */
  taskEvents?: TaskEventSource;
  /** This orchestrator's instance id: its services carry it, reconcile touches only those. */
  instanceId: string;
  /** L2 checkpoint settings handed to jobs. */
  s3?: S3Settings;
  /** How job containers are confined; absent: DEFAULT_JOB_ISOLATION. */
  isolation?: JobIsolation;
  /** The jobs' network, when `isolation.network` is not "host" (renewed when stale). */
  network?: JobNetwork;
  /** Milliseconds between sweeps for checkpoint volumes of ended jobs (0 = no sweeps). */
  volumeSweepMs?: number;
  /** Directory of stored bundles (`<id>.tar.gz`). */
  bundleDir: string;
  /** GPU placement through Chronos partitions; absent = plain Swarm placement. */
  partitions?: PartitionKeeper;
  /** Publishes job images to config `registry`; absent: every node must hold them. */
  images?: ImagePublisher;
  /** Milliseconds between partition sweeps (0 = none). */
  sweepIntervalMs?: number;
  /**
   * How long a job's node may stay down (Swarm) before its attempt ends as lost
   * and resumes elsewhere (ms; 0 or absent: attempts wait for their deadline).
   */
  nodeDownGraceMs?: number;
  now: () => number;
  log: (msg: string) => void;
}

/** One WatchJob event: new lines and/or the job after a state change. */
export interface WatchEvent {
  lines: LogLine[];
  /**
   * Lines already encoded as a `WatchJobEvent` (the live tail, shared by
   * every watcher); set instead of `lines`, never with `job`.
   */
  encoded?: Uint8Array;
  job?: JobRecord;
}

/** Options of {@link JobManager.watch}. */
export interface WatchOptions {
  afterSeq: number;
  noLogs: boolean;
  noFollow: boolean;
  signal: AbortSignal;
}

const ACTIVE: JobState[] = ["SCHEDULED", "RUNNING", "RESUMING"];

/**
 * Queued jobs a scheduling round considers beyond its free slots: room to
 * start small jobs behind ones that wait for GPU memory, without reading the
 * whole queue (which made a round's CPU grow with the queue's length).
 */
const BACKFILL_WINDOW = 64;

/** How long an image id found by a lookup is reused (submit check, then its scheduling round). */
const IMAGE_ID_TTL_MS = 2000;
/** Bytes of encoded lines per WatchJob message (well under gRPC's 4 MiB default). */
const WATCH_BATCH_BYTES = 1 << 20;

function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Owns job records, runners and the queue. */
export class JobManager {
  #d: ManagerDeps;
  #runners = new Map<string, JobRunner>();
  #waiters = new Map<string, Set<() => void>>();
  #scheduling: Promise<void> | null = null;
  #busy = false;
  #again = false;
  #closed = false;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  /** Highest number of runners alive at once (for tests and metrics). */
  peakActive = 0;
  /** Time taken by scheduling rounds (exported on /metrics). */
  readonly scheduleRounds = new ScheduleRounds();
  /** What told the runners that attempts ended (exported on /metrics). */
  readonly attemptEnds = new AttemptEnds();

  /** Nodes Swarm marks down, read while attempts ask (null: config node_down_grace is 0). */
  #nodes: NodeWatch | null;

  /** Creates the manager; call {@link reconcile} before serving. */
  constructor(deps: ManagerDeps) {
    this.#d = deps;
    const graceMs = deps.nodeDownGraceMs ?? 0;
    this.#nodes = graceMs > 0
      ? new NodeWatch({
        listNodes: () => deps.swarm.listNodes(),
        graceMs,
        now: deps.now,
        log: deps.log,
      })
      : null;
  }

  /** Jobs currently holding a slot (their service may still be shutting down). */
  get activeCount(): number {
    return this.#runners.size;
  }

  /** Active jobs per Swarm node id. */
  activeByNode(): Map<string, number> {
    const out = new Map<string, number>();
    for (const id of this.#runners.keys()) {
      const node = this.#d.store.get(id)?.nodeId ?? "";
      if (node) out.set(node, (out.get(node) ?? 0) + 1);
    }
    return out;
  }

  #notify(jobId: string): void {
    const ws = this.#waiters.get(jobId);
    if (!ws) return;
    this.#waiters.delete(jobId);
    for (const w of ws) w();
  }

  #waitChange(jobId: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      let set = this.#waiters.get(jobId);
      if (!set) {
        set = new Set();
        this.#waiters.set(jobId, set);
      }
      const done = () => {
        this.#waiters.get(jobId)?.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      set.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Image ids found recently: a submit's check and its scheduling round share one lookup. */
  #imageIds = new Map<string, { id: string; atMs: number }>();

  /**
   * The manager's id for image `ref`: asked of Docker at most once per
   * {@link IMAGE_ID_TTL_MS} (a tag moved meanwhile is seen on the next
   * lookup); a missing image is never cached, so loading it helps at once.
   * With a registry, a reference naming a registry host is its own "id": the
   * node pulls it, and the service hook checks the registry holds it.
   */
  async #resolveImage(ref: string): Promise<string | null> {
    if (this.#d.images?.passesThrough(ref)) return ref;
    const hit = this.#imageIds.get(ref);
    if (hit && this.#d.now() - hit.atMs < IMAGE_ID_TTL_MS) return hit.id;
    const id = await this.#d.swarm.resolveImage(ref);
    if (id) this.#imageIds.set(ref, { id, atMs: this.#d.now() });
    else this.#imageIds.delete(ref);
    return id;
  }

  /** Verifies the image exists on the manager (so a typo fails at submit). */
  async checkImage(spec: JobSpec): Promise<void> {
    const id = await this.#resolveImage(spec.image);
    if (!id) {
      throw new InvalidArgumentError(
        "spec.image",
        `image "${spec.image}" not found on the Swarm manager (build or load it there first)`,
      );
    }
  }

  /**
   * Records a new QUEUED job. `bundlePath` is a fully received upload that is
   * moved into the bundle store; the record is written only after that, in
   * one statement, so a failed upload leaves no half-made job.
   */
  async submit(spec: JobSpec, bundle: { path: string; bytes: number } | null): Promise<JobRecord> {
    if (this.#closed) throw new UnavailableError("orchestrator is shutting down");
    const queued = this.#d.store.countByState().QUEUED ?? 0;
    if (queued >= this.#d.maxQueuedJobs) {
      throw new ResourceExhaustedError(`queue is full (${queued} jobs waiting)`);
    }
    const perUser = this.#d.maxQueuedJobsPerUser ?? Infinity;
    if (perUser < Infinity && this.#d.store.countQueued(spec.user) >= perUser) {
      throw new ResourceExhaustedError(
        `user ${spec.user} has ${perUser} jobs queued, the limit (max_queued_jobs_per_user)`,
      );
    }
    await this.#d.partitions?.checkFits(spec);
    const id = `j-${randomHex(6)}`;
    if (bundle) await Deno.rename(bundle.path, `${this.#d.bundleDir}/${id}.tar.gz`);
    const job = this.#d.store.insert({
      id,
      spec,
      token: randomHex(24),
      bundleBytes: bundle?.bytes ?? 0,
      createdAt: this.#d.now(),
    });
    this.#d.log(`job ${id}: queued (user ${spec.user})`);
    this.schedule();
    return job;
  }

  /** The job with its current log sequence number; throws NotFoundError. */
  async get(id: string): Promise<JobRecord> {
    const job = this.#d.store.mustGet(id);
    const log = await this.#d.logs.get(id);
    return { ...job, logSeq: log.lastSeq };
  }

  /** A job's recorded transitions, oldest first (`seq` orders them across jobs). */
  history(id: string): ReturnType<JobStore["events"]> {
    return this.#d.store.events(id);
  }

  /** A page of jobs, newest first. */
  list(q: ListQuery): JobRecord[] {
    return this.#d.store.list(q);
  }

  /** Starts as many queued jobs as free slots allow. Safe to call often. */
  schedule(): void {
    if (this.#closed) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    this.#scheduling = (async () => {
      try {
        do {
          this.#again = false;
          await this.#scheduleOnce();
        } while (this.#again && !this.#closed);
      } catch (err) {
        this.#d.log(`scheduler: ${(err as Error).message}; retrying in 1 s`);
        this.#retryTimer ??= setTimeout(() => {
          this.#retryTimer = null;
          this.schedule();
        }, 1000);
      } finally {
        this.#busy = false;
      }
    })();
  }

  async #scheduleOnce(): Promise<void> {
    // A round's CPU is its synchronous slices: timed between its awaits.
    const t0 = performance.now();
    const clock = { busy: 0, since: t0 };
    try {
      await this.#scheduleRound(clock);
    } finally {
      const end = performance.now();
      this.scheduleRounds.record(clock.busy + end - clock.since, end - t0);
    }
  }

  /** Awaits `p` without counting the wait as the round's busy time. */
  async #offThread<T>(clock: { busy: number; since: number }, p: Promise<T>): Promise<T> {
    clock.busy += performance.now() - clock.since;
    try {
      return await p;
    } finally {
      clock.since = performance.now();
    }
  }

  /**
   * One round: read what waits, ask the agents for free shares and Docker for
   * the images (one lookup per distinct image), plan with the pure
   * {@link planSchedule}, then apply the plan with compare-and-set transitions.
   */
  async #scheduleRound(clock: { busy: number; since: number }): Promise<void> {
    const freeSlots = this.#d.maxConcurrentJobs - this.#runners.size;
    if (freeSlots <= 0) return;
    const store = this.#d.store;
    const runningByUser = new Map<string, number>();
    for (const id of this.#runners.keys()) {
      const u = store.get(id)?.spec.user ?? "";
      runningByUser.set(u, (runningByUser.get(u) ?? 0) + 1);
    }
    // Only the head of the queue is read in full: the fair-share order comes
    // from ids, users and submission numbers, and a round considers the free
    // slots plus a backfill window (jobs behind ones that wait for GPUs).
    const head = pickJobs(
      store.queueEntries(["QUEUED"]),
      runningByUser,
      freeSlots + BACKFILL_WINDOW,
    );
    const before = {
      resuming: store.inStates(["RESUMING"]).filter((j) => !this.#runners.has(j.id)),
      queued: head.map((id) => store.get(id)).filter((j): j is JobRecord => j !== null),
    };
    if (before.resuming.length === 0 && before.queued.length === 0) return;
    // Free shares per device from the agents' partition lists (null: plain Swarm placement).
    const capacities = this.#d.partitions
      ? await this.#offThread(clock, this.#d.partitions.capacities())
      : null;
    const images = new Map<string, string | null>();
    for (const image of imagesToResolve(before)) {
      images.set(image, await this.#offThread(clock, this.#resolveImage(image)));
    }
    if (this.#closed) return;
    // Read again after the awaits: a job cancelled meanwhile is not planned.
    const still = (jobs: JobRecord[], state: JobState) =>
      jobs.map((j) => store.get(j.id)).filter((j): j is JobRecord =>
        j !== null && j.state === state && !this.#runners.has(j.id)
      );
    const now = {
      resuming: still(before.resuming, "RESUMING"),
      queued: still(before.queued, "QUEUED"),
    };
    const plan = planSchedule({
      freeSlots,
      resuming: now.resuming,
      queued: now.queued,
      runningByUser,
      capacities,
      images,
    });
    for (const { id, reason } of plan.reasons) {
      this.#d.store.update(id, { reason });
      this.#notify(id);
    }
    for (const t of plan.transitions) {
      if (!this.#tryTransition(t.id, [t.from], t.to, t.patch)) {
        this.#again = true; // its slot was not used: plan again
        continue;
      }
      if (t.to === "SCHEDULED") this.#startRunner(t.id, t.imageId ?? null);
    }
  }

  #tryTransition(
    id: string,
    from: JobState[],
    to: JobState,
    patch: Parameters<JobStore["transition"]>[3],
  ): boolean {
    try {
      this.#d.store.transition(id, from, to, patch, this.#d.now());
      this.#notify(id);
      return true;
    } catch (err) {
      if (err instanceof FailedPreconditionError) return false;
      throw err;
    }
  }

  #startRunner(id: string, imageId: string | null): void {
    const runner = new JobRunner(id, {
      store: this.#d.store,
      logs: this.#d.logs,
      swarm: this.#d.swarm,
      orchestratorAddress: this.#d.orchestratorAddress,
      orchestratorCaPem: this.#d.orchestratorCaPem,
      instanceId: this.#d.instanceId,
      s3: this.#d.s3,
      isolation: this.#d.isolation,
      network: this.#d.network,
      partitions: this.#d.partitions,
      images: this.#d.images,
      stopGracePeriodS: this.#d.stopGracePeriodS,
      pollIntervalMs: this.#d.pollIntervalMs,
      events: this.#d.taskEvents,
      nodes: this.#nodes ?? undefined,
      ends: this.attemptEnds,
      now: this.#d.now,
      onChange: (jobId) => this.#notify(jobId),
      log: this.#d.log,
    });
    this.#runners.set(id, runner);
    this.peakActive = Math.max(this.peakActive, this.#runners.size);
    runner.start(imageId);
    // The attempt's partition is released by its partition hook before this.
    runner.done.then(() => {
      if (this.#runners.get(id) === runner) this.#runners.delete(id);
      this.#notify(id);
      this.schedule();
    });
  }

  // What a job's runtime reports about itself arrives here as typed events
  // from the Runtime handlers: the manager (with the runner it drives) is the
  // only writer of job records.

  /**
   * Throws FailedPreconditionError when `job` has ended: its result and
   * checkpoints are final, and a leaked job token cannot replace them.
   */
  assertRunning(job: JobRecord): void {
    if (isTerminal(job.state)) {
      throw new FailedPreconditionError(
        `job ${job.id} already ended (${job.state}): it accepts no more reports`,
      );
    }
  }

  /**
   * Throws FailedPreconditionError when `job` ended longer ago than its
   * container can outlive it (the stop grace period, plus 5 s): a stopped
   * job's runtime still sends the lines printed while it shut down, but a
   * leaked token of a finished job cannot add lines to its log, fetch its
   * bundle or function, or get L2 access (`what` names the refused request).
   */
  assertWithinStopWindow(job: JobRecord, what = "log lines"): void {
    if (!isTerminal(job.state)) return;
    const window = this.#d.stopGracePeriodS * 1000 + 5000;
    if (this.#d.now() - (job.finishedAt ?? 0) > window) {
      throw new FailedPreconditionError(
        `job ${job.id} already ended (${job.state}): it accepts no more ${what}`,
      );
    }
  }

  /** The job's result is stored (`<id>.bin`): recorded, and its runner looks for the end now. */
  resultStored(id: string): void {
    this.#d.store.update(id, { hasResult: true });
    this.#notify(id);
    this.nudge(id);
  }

  /**
   * The job's result was refused (`message` says why): recorded with its code
   * while the job runs, so the attempt ends FAILED however the job exits.
   */
  resultRefused(id: string, message: string): void {
    this.#d.store.update(id, {
      reason: `result refused: ${message}`,
      reasonCode: REASON_CODES.RESULT_REFUSED,
    });
    this.#notify(id);
  }

  /** The job completed a checkpoint: recorded before the runtime hears back (expiry reads it). */
  checkpointReported(id: string, mark: CheckpointMark): void {
    this.#d.store.recordCheckpoint(id, mark);
  }

  /**
   * The runtime of `id`'s attempt announced its end (its log stream's last
   * batch): the job's process exited with `exitCode` by itself and every
   * line is stored. The runner may end the attempt on it (JobRunner.runtimeExited).
   */
  runtimeExited(id: string, attempt: number, exitCode: number): void {
    this.#runners.get(id)?.runtimeExited(attempt, exitCode);
  }

  /**
   * Hurries the task polls of `id`'s runner (see JobRunner.nudge); called
   * when the job's runtime signals a start or an end. No-op without a runner.
   */
  nudge(id: string): void {
    this.#runners.get(id)?.nudge();
  }

  /**
   * Cancels a job: CANCELLED is recorded first, then its service is removed.
   * Throws FailedPreconditionError when the job already ended.
   */
  async cancel(id: string): Promise<JobRecord> {
    const job = this.#d.store.mustGet(id);
    if (isTerminal(job.state)) {
      throw new FailedPreconditionError(`job ${id} already ended (${job.state})`);
    }
    const from: JobState[] = job.state === "QUEUED" ? ["QUEUED"] : ACTIVE;
    try {
      this.#d.store.transition(id, from, "CANCELLED", {
        reason: "cancelled by user",
        reasonCode: REASON_CODES.CANCELLED,
      });
    } catch (err) {
      if (err instanceof FailedPreconditionError) {
        const now = this.#d.store.mustGet(id);
        throw new FailedPreconditionError(`job ${id} already ended (${now.state})`);
      }
      throw err;
    }
    this.#notify(id);
    const runner = this.#runners.get(id);
    if (runner) await runner.cancel();
    else if (job.state !== "QUEUED") await this.#d.swarm.removeService(serviceName(id));
    this.#d.log(`job ${id}: cancelled`);
    return await this.get(id);
  }

  /**
   * Streams a job's events: the job first, then log lines after
   * `afterSeq` and state changes, ending once the job has ended and every
   * line was delivered (or after the backlog with `noFollow`).
   */
  async *watch(id: string, opts: WatchOptions): AsyncGenerator<WatchEvent> {
    let job = await this.get(id);
    const log = await this.#d.logs.get(id);
    yield { lines: [], job };
    let cursor = opts.afterSeq;
    let lastState = job.state;
    while (!opts.signal.aborted) {
      if (!opts.noLogs) {
        const held = log.readEncoded(cursor, WATCH_BATCH_BYTES) ??
          await log.readEncodedFromFile(cursor, WATCH_BATCH_BYTES);
        if (held) {
          cursor = held.lastSeq;
          yield { lines: [], encoded: held.bytes };
          continue;
        }
      }
      const now = this.#d.store.mustGet(id);
      const finished = isTerminal(now.state) && !this.#runners.has(id);
      if (now.state !== lastState || finished) {
        job = { ...now, logSeq: log.lastSeq };
        if (now.state !== lastState) {
          lastState = now.state;
          yield { lines: [], job };
        }
      }
      if (finished) {
        // The runner may have appended between the read and the check.
        if (!opts.noLogs && log.lastSeq > cursor) continue;
        return;
      }
      if (opts.noFollow) return;
      // A complete log has nothing more to wait for: only a job change (its
      // runner letting go) can move us on. Waiting on it too would spin.
      const waits = [this.#waitChange(id, opts.signal)];
      if (!opts.noLogs && !log.complete) waits.push(log.waitForMore(cursor, opts.signal));
      await Promise.race(waits);
    }
  }

  /**
   * Brings the store and Swarm back in line after a start: reads the active
   * jobs and this instance's services, plans with the pure
   * {@link planReconcile}, then applies the plan: store writes first (stale
   * service ids, jobs whose service vanished), then runners (attached to a
   * surviving service, or creating one for a SCHEDULED job), then removals
   * (a RESUMING job's old service, orphans).
   */
  async reconcile(): Promise<{ attached: number; failed: number; removed: number }> {
    const services = jobServicesOf(
      await this.#d.swarm.listServices(JOB_LABEL),
      this.#d.instanceId,
    );
    const plan = planReconcile({ activeJobs: this.#d.store.inStates(ACTIVE), services });
    for (const { jobId, serviceId } of plan.fixServiceIds) {
      this.#d.store.update(jobId, { serviceId });
    }
    for (const { jobId, reason, reasonCode } of plan.fail) {
      this.#tryTransition(jobId, ACTIVE, "FAILED", { reason, reasonCode });
      (await this.#d.logs.get(jobId)).markComplete();
    }
    for (const { jobId } of plan.attach) this.#startRunner(jobId, null);
    for (const { jobId, image } of plan.recreate) {
      this.#startRunner(jobId, await this.#resolveImage(image));
    }
    for (const { serviceId } of plan.removeServices) {
      await this.#d.swarm.removeService(serviceId);
    }
    const attached = plan.attach.length + plan.recreate.length;
    const failed = plan.fail.length;
    const removed = plan.removeServices.length;
    this.#d.log(
      `reconcile: ${attached} job(s) re-attached, ${failed} failed, ${removed} orphan service(s) removed`,
    );
    this.schedule();
    return { attached, failed, removed };
  }

  #partitionTimer: ReturnType<typeof setTimeout> | null = null;
  #partitionSweep: Promise<void> | null = null;

  /**
   * Reconciles partitions now (orphans released, lost ones re-created), then
   * every `sweepIntervalMs`, each time also re-running the scheduler (shares
   * freed by expiry or by hand let waiting jobs start).
   */
  async startPartitionSweeps(): Promise<void> {
    const keeper = this.#d.partitions;
    if (!keeper || this.#closed) return;
    try {
      const r = await keeper.sweep();
      if (r.released || r.recreated) {
        this.#d.log(`partition sweep: ${r.released} released, ${r.recreated} re-created`);
      }
    } catch (err) {
      this.#d.log(`partition sweep: ${(err as Error).message}`);
    }
    this.schedule();
    const every = this.#d.sweepIntervalMs ?? 0;
    if (every <= 0 || this.#closed) return;
    this.#partitionTimer = setTimeout(() => {
      this.#partitionSweep = this.startPartitionSweeps().finally(() => {
        this.#partitionSweep = null;
      });
    }, every);
  }

  #sweepTimer: ReturnType<typeof setTimeout> | null = null;
  #sweeping: Promise<void> | null = null;

  /**
   * Starts the periodic sweep that removes L1 checkpoint volumes of ended jobs
   * on the manager's engine (a volume still held by an exiting container is
   * retried on the next sweep), and older generations of the jobs' network
   * once no service uses them.
   */
  startVolumeSweeps(): void {
    const every = this.#d.volumeSweepMs ?? 0;
    if (every <= 0 || this.#closed) return;
    this.#sweepTimer = setTimeout(() => {
      this.#sweeping = Promise.all([this.sweepVolumes(), this.#d.network?.sweep()]).then(
        () => {},
        (err) => this.#d.log(`volume sweep: ${(err as Error).message}`),
      ).finally(() => {
        this.#sweeping = null;
        this.startVolumeSweeps();
      });
    }, every);
  }

  /**
   * Removes checkpoint volumes whose job has ended (planned by the pure
   * {@link planVolumeSweep}); returns how many went.
   */
  async sweepVolumes(): Promise<number> {
    const vols = await this.#d.swarm.listVolumes(INSTANCE_LABEL, this.#d.instanceId);
    let removed = 0;
    for (const name of planVolumeSweep(jobVolumesOf(vols), (id) => this.#d.store.get(id))) {
      if (await this.#d.swarm.removeVolume(name)) removed++;
    }
    return removed;
  }

  /** Stops scheduling and detaches every runner; services keep running. */
  async shutdown(): Promise<void> {
    this.#closed = true;
    if (this.#sweepTimer) clearTimeout(this.#sweepTimer);
    if (this.#partitionTimer) clearTimeout(this.#partitionTimer);
    await this.#partitionSweep;
    await this.#sweeping;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    await this.#scheduling;
    await Promise.all([...this.#runners.values()].map((r) => r.detach()));
    for (const id of [...this.#waiters.keys()]) this.#notify(id);
  }
}
