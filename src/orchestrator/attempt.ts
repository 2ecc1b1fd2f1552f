/**
 * One attempt of a job, as the runner drives it: a short fixed sequence
 * whose steps each hook may take part in, one concern per hook
 * (src/orchestrator/hooks/):
 *
 * 1. `prepare`, in hook order: take the partition, create (or find) the service;
 * 2. `started`: follow the log;
 * 3. the runner watches the task (container events, task polls), calling
 *    every `tick` on each turn (the deadline backstop, the node gone down);
 * 4. the task ended: every `judge` refines the outcome at once (a failure at
 *    the deadline is an expiry), every `ended` finishes reading what the
 *    attempt left (the log), every `explain` refines the outcome from it
 *    (GPU out of memory);
 * 5. the runner decides with the pure {@link decideAttemptEnd} and records it;
 * 6. `cleanup`, in reverse order: stop and remove the service, release the
 *    partition (never on detach: the job keeps running).
 *
 * A new thing done around every attempt (a device, a mount, a sidecar) is a
 * new hook in hooks/ and one line in {@link attemptHooks}.
 * @module
 */
import type { JobRecord, JobState, ReasonCode } from "../core/mod.ts";
import type { JobLog, LogHub } from "../logs/mod.ts";
import type { JobStore } from "../store/mod.ts";
import type { SwarmClient } from "../swarm/mod.ts";
import type { AttemptFacts, FinalState, TaskOutcome } from "./attempt_end.ts";
import type { PartitionKeeper } from "./partitions.ts";
import type { ImagePublisher } from "./image_publisher.ts";
import type { JobIsolation, S3Settings } from "./service_spec.ts";
import type { JobNetwork } from "./job_network.ts";
import type { AttemptEnds } from "./metrics.ts";
import type { TaskEventSource } from "./task_events.ts";
import type { NodeWatch } from "./node_watch.ts";

/** What a runner needs from the orchestrator. */
export interface RunnerDeps {
  store: JobStore;
  logs: LogHub;
  swarm: SwarmClient;
  /** host:port job containers dial (grpcs://host:port when TLS). */
  orchestratorAddress: string;
  /** PEM of the CA that signed the orchestrator's TLS certificate, for the job's runtime. */
  orchestratorCaPem?: string;
  /** Owning orchestrator instance id (service label). */
  instanceId: string;
  /** L2 checkpoint settings handed to the job. */
  s3?: S3Settings;
  /** How the job's container is confined; absent: DEFAULT_JOB_ISOLATION. */
  isolation?: JobIsolation;
  /**
   * The network jobs join when `isolation.network` is not "host": its current
   * generation, renewed when a node's copy is stale (job_network.ts).
   */
  network?: JobNetwork;
  /** Creates the partition of a job placed through partitions. */
  partitions?: PartitionKeeper;
  /** Publishes job images to config `registry`; absent: services use the manager's image id. */
  images?: ImagePublisher;
  stopGracePeriodS: number;
  pollIntervalMs: number;
  /**
   * Container start and exit events (the manager's own node); a job whose
   * container runs where they are delivered is polled only as a backstop.
   */
  events?: TaskEventSource;
  /**
   * Which nodes Swarm has marked down, and for how long: an attempt on a node
   * down past config `node_down_grace` ends as lost (absent: never).
   */
  nodes?: NodeWatch;
  /** Counts what told the runner that its attempt ended (metrics). */
  ends?: AttemptEnds;
  now: () => number;
  /** Called after every state change of the job. */
  onChange: (jobId: string) => void;
  /** Diagnostic log (never given secrets). */
  log: (msg: string) => void;
}

/** Text that starts the log line written when a job's next attempt begins. */
export const ATTEMPT_MARKER = "[cumulus] attempt ";

/** The attempt as hooks see it: what is known so far, and the runner's records. */
export interface Attempt {
  readonly jobId: string;
  readonly deps: RunnerDeps;
  /** The job record as last read or written by this attempt. */
  job: JobRecord;
  readonly log: JobLog;
  /** The image to create the service from (null: re-attaching to an existing one). */
  readonly imageId: string | null;
  /** The Swarm service ("" until the service hook made or found it). */
  serviceId: string;
  /** Aborts on cancel and on detach. */
  readonly signal: AbortSignal;
  /** The user cancelled the job (CANCELLED is recorded). */
  readonly cancelled: boolean;
  /** The orchestrator is shutting down and leaves the job running. */
  readonly detached: boolean;
  /** The orchestrator's expiry backstop stopped the job (and recorded its state). */
  expiredByUs: boolean;
  /** That backstop recorded RESUMING. */
  expiryResumed: boolean;
  /** The task's container, once known. */
  containerId: string;
  /**
   * The Swarm node this attempt's task was seen on ("" until seen; the job
   * record's `nodeId` is the previous attempt's until then).
   */
  nodeId: string;
  /**
   * The container, when the end was seen on the local engine (its die event, or
   * its runtime announcing the end): its own log holds every line already.
   */
  endedLocally: string;
  /** Log seq before this attempt's first line (-1: the stored tail is this attempt's). */
  attemptStartSeq: number;
  /** Time of the first line read from Docker, a start time for a job never seen running. */
  firstLineMs: number | null;
  /** Records a state change; null when another actor (a cancel) moved the job first. */
  transition(
    from: JobState[],
    to: JobState,
    patch: Parameters<JobStore["transition"]>[3],
  ): JobRecord | null;
  /**
   * Records RESUMING with its reason (`refund`: the attempt never ran its process and does
   * not count); false when another actor moved the job first.
   */
  resume(reason: string, reasonCode: ReasonCode, refund?: boolean): boolean;
  /** Records the job's final state. */
  setFinal(final: FinalState): void;
  /** What is known now, for {@link decideAttemptEnd}. */
  facts(outcome: TaskOutcome | null): AttemptFacts;
}

/**
 * What `prepare` says: `next` (go on), `end` (the attempt was stopped before
 * its container existed: decide with no outcome), `stop` (the hook recorded
 * how the attempt ends; nothing more to do but clean up).
 */
export type PrepareResult = "next" | "end" | "stop";

/** One concern around an attempt; every step is optional. See the module doc for the order. */
export interface AttemptHook {
  /** For diagnostics. */
  readonly name: string;
  prepare?(a: Attempt): Promise<PrepareResult>;
  started?(a: Attempt): void;
  /**
   * An outcome ends the attempt now, as a task's end would (the log is not
   * caught up); a hook that records the end itself says so in the facts
   * (the deadline's `expiredByUs`).
   */
  tick?(a: Attempt): TaskOutcome | null;
  judge?(a: Attempt, outcome: TaskOutcome): TaskOutcome;
  ended?(a: Attempt, outcome: TaskOutcome | null): Promise<void>;
  explain?(a: Attempt, outcome: TaskOutcome): Promise<TaskOutcome>;
  cleanup?(a: Attempt): Promise<void>;
}
