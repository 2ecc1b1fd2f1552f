/**
 * The SDK's view of Cumulus objects. These mirror `proto/cumulus.proto`
 * (package `cumulus.v1`) with friendlier shapes: absent values are `null`
 * instead of zero, log streams are lower case.
 * @module
 */

/** Lifecycle states of a job. */
export type JobState =
  | "QUEUED"
  | "SCHEDULED"
  | "RUNNING"
  | "SUCCEEDED"
  | "FAILED"
  | "CANCELLED"
  | "EXPIRED"
  | "RESUMING";

/** Every job state, in lifecycle order. */
export const JOB_STATES: readonly JobState[] = [
  "QUEUED",
  "SCHEDULED",
  "RUNNING",
  "SUCCEEDED",
  "FAILED",
  "CANCELLED",
  "EXPIRED",
  "RESUMING",
];

/** True when a job in `state` will never change again. */
export function isTerminalState(state: JobState): boolean {
  return state === "SUCCEEDED" || state === "FAILED" || state === "CANCELLED" ||
    state === "EXPIRED";
}

/** GPU memory fraction used when a spec gives none. */
export const DEFAULT_GPU_MEMORY = 0.25;

/** Partition lifetime in seconds used when a spec gives none. */
export const DEFAULT_DURATION = 3600;

/**
 * What to run, as given to {@link CumulusClient.submit}. Only `command` (or
 * `function`) is required; the orchestrator validates the rest and answers
 * INVALID_ARGUMENT naming the first bad field.
 */
export interface JobSpecInput {
  /** argv to run (never a shell string); use `["sh", "-c", "..."]` for a shell. */
  command?: string[];
  /** cloudpickle'd (function, args, kwargs), for Python jobs. */
  function?: Uint8Array;
  /** Container image; empty or absent means the orchestrator's default image. */
  image?: string;
  /** Extra environment variables for the job. */
  env?: Record<string, string>;
  /**
   * Fraction of one device's memory, 0 < f < 1 (default {@link DEFAULT_GPU_MEMORY}
   * unless `gpuCount` is given); a whole number N >= 1 asks N whole GPUs.
   */
  gpuMemory?: number;
  /**
   * GPU memory as an absolute size instead of a fraction, e.g. "20GiB" or "512MiB" (the
   * orchestrator turns it into each device's share); give it or `gpuMemory`, not both.
   */
  gpuMemorySize?: string;
  /** Partition lifetime in seconds, > 0 (default {@link DEFAULT_DURATION}). */
  duration?: number;
  /**
   * Whole GPUs wanted, 1..8 on one worker (default: a fraction of one GPU). Alone it
   * asks whole GPUs; a fractional `gpuMemory` is for one GPU only.
   */
  gpuCount?: number;
  /** Swarm placement constraints, e.g. `node.labels.gpu==h100`. */
  constraints?: string[];
  /**
   * Resume policy on infrastructure failure. `resumeOnExpiry`: also resume when
   * the duration is over, if the job reported a checkpoint and attempts remain
   * (each attempt gets a fresh duration; needs `maxAttempts` > 1).
   */
  retry?: { resume?: boolean; maxAttempts?: number; resumeOnExpiry?: boolean };
  /** Checkpoint settings. */
  checkpoint?: { s3Prefix?: string };
  /** Who submits, for fair share (default "anonymous"). */
  user?: string;
  /** Human-readable name. */
  name?: string;
  /** Working directory inside the container (absolute). */
  workdir?: string;
  /**
   * Seconds the result is kept after the job ends, then removed (default and
   * most: the orchestrator's `result_retention`).
   */
  resultRetention?: number;
  /**
   * CPU cores the job's container may use, e.g. 0.5 or 8 (default and most:
   * the orchestrator's `job_cpu_default` and `job_cpu_max`).
   */
  cpu?: number;
  /**
   * Memory the job's container may use, e.g. "8GiB" (default and most: the
   * orchestrator's `job_memory_default` and `job_memory_max`). Past it the
   * job ends FAILED with reason code `MEMORY_EXCEEDED`.
   */
  memory?: string;
  /**
   * Run as the image's own user instead of the orchestrator's job uid
   * (refused unless the orchestrator's `allow_image_user` is on).
   */
  imageUser?: boolean;
}

/** A job's spec as the orchestrator stored it (defaults filled in). */
export interface JobSpec {
  /** Container image. */
  image: string;
  /** argv. */
  command: string[];
  /** Pickled Python call, or empty. */
  function: Uint8Array;
  /** Extra environment. */
  env: Record<string, string>;
  /**
   * Fraction of one device's memory; 1 for whole GPUs (see `gpuCount`); 0 when
   * {@link JobSpec.gpuMemorySize} is set.
   */
  gpuMemory: number;
  /** Absolute GPU memory asked for, e.g. "21474836480B"; empty when a fraction was given. */
  gpuMemorySize: string;
  /** Partition lifetime in seconds. */
  duration: number;
  /** GPUs wanted: 1, or the number of whole GPUs. */
  gpuCount: number;
  /** Placement constraints. */
  constraints: string[];
  /** Resume policy. */
  retry: { resume: boolean; maxAttempts: number; resumeOnExpiry: boolean };
  /** Checkpoint settings. */
  checkpoint: { s3Prefix: string };
  /** Submitting user. */
  user: string;
  /** Display name ("" when none). */
  name: string;
  /** Working directory ("" = image default). */
  workdir: string;
  /** Seconds the result is kept after the job ends (0: forever). */
  resultRetention: number;
  /** CPU cores of the job's container (0: set before limits existed). */
  cpu: number;
  /** Memory limit of the job's container, e.g. "4294967296B" ("" before limits existed). */
  memory: string;
  /** True when the job runs as its image's own user. */
  imageUser: boolean;
}

/** Everything the orchestrator knows about one job. */
export interface JobRecord {
  /** Job id: `j-` followed by 12 hex characters. */
  id: string;
  /** The stored spec. */
  spec: JobSpec;
  /** Current state. */
  state: JobState;
  /** Process exit code, or null while unknown (still running, never started, cancelled). */
  exitCode: number | null;
  /** Why the job is in its state (queue reason, failure reason). */
  reason: string;
  /** Submission time, Unix epoch milliseconds. */
  createdAtMs: number;
  /** Start time, or null before the job started. */
  startedAtMs: number | null;
  /** End time, or null before the job ended. */
  finishedAtMs: number | null;
  /** Attempts made so far. */
  attempts: number;
  /** Swarm node the job runs or ran on ("" before placement). */
  nodeId: string;
  /** Swarm service id ("" before placement). */
  serviceId: string;
  /** Highest log sequence number stored so far. */
  logSeq: number;
  /** True once a result is stored (see {@link Job.result}). */
  hasResult: boolean;
  /** Size of the uploaded bundle in bytes. */
  bundleBytes: number;
  /**
   * Size of the pickled Python call: > 0 for a function job. The orchestrator
   * never sends the bytes back, so `spec.function` is empty here.
   */
  functionBytes: number;
  /**
   * When the result was removed after its retention (Unix epoch ms), or null
   * while it is kept; {@link Job.result} then fails with NOT_FOUND saying so.
   */
  resultRemovedAtMs: number | null;
  /** The newest checkpoint the job reported, or null when none was. */
  lastCheckpoint: CheckpointInfo | null;
  /** Every Chronos partition of the current attempt, one per GPU, in GPU order. */
  partitionIds: string[];
  /** The worker's device index of each of those GPUs (empty before placement). */
  gpuDevices: number[];
  /**
   * Why the job ended (or, RESUMING, why its last attempt did), as a code for
   * programs ("" when it succeeded): "EXIT_CODE", "KILLED", "TASK_FAILED",
   * "TASK_LOST", "REJECTED", "NETWORK_STALE", "START_FAILED", "SERVICE_REMOVED",
   * "SERVICE_VANISHED", "EXPIRED", "CANCELLED", "GPU_MEMORY_EXCEEDED",
   * "MPS_FAULT", "RESULT_REFUSED", "MEMORY_EXCEEDED" (docs/sdk-python.md,
   * "Reason codes").
   */
  reasonCode: string;
}

/** A checkpoint a job reported to the orchestrator. */
export interface CheckpointInfo {
  /** Checkpoint step. */
  step: number;
  /** "l1" (the worker's disk) or "l2" (S3). */
  tier: string;
  /** When the orchestrator recorded it, Unix epoch milliseconds. */
  atMs: number;
}

/** One line of a job's output. */
export interface LogLine {
  /** Sequence number: 1-based, gap-free per job. */
  seq: number;
  /** Which stream the job wrote it to. */
  stream: "stdout" | "stderr";
  /** When the worker saw the line, Unix epoch milliseconds. */
  timeMs: number;
  /** The line without its newline. */
  text: string;
}

/** One WatchJob message: new log lines and, on a state change, the job. */
export interface JobEvent {
  /** Lines in sequence order (possibly none). */
  lines: LogLine[];
  /** The job record when its state changed (and in the first event), else null. */
  job: JobRecord | null;
}

/** A Swarm node that can run jobs. */
export interface Worker {
  /** Swarm node id. */
  nodeId: string;
  /** Host name. */
  hostname: string;
  /** Swarm node state: ready, down, unknown, disconnected. */
  state: string;
  /** active, pause or drain. */
  availability: string;
  /** manager or worker. */
  role: string;
  /** Node labels. */
  labels: Record<string, string>;
  /** Node address. */
  address: string;
  /** Cumulus jobs running there now. */
  runningJobs: number;
  /** The node's agent: "ok", "agent unreachable: <reason>" or "no agent". */
  agent: string;
  /** Its devices with the share held by partitions and the share free. */
  gpus: WorkerGpu[];
  /**
   * How jobs reach its GPUs: "nvidia" (Cumulus's runtime wrapper), "nvidia-toolkit",
   * "amd", "intel", or "none" (no device access: partitions are bookkeeping only).
   */
  deviceAccess: string;
}

/** One device of a worker, as its agent reports it. */
export interface WorkerGpu {
  /** Device index on the node. */
  index: number;
  /** Device name. */
  name: string;
  /** Total memory in bytes. */
  memoryBytes: number;
  /** Fraction held by partitions. */
  allocated: number;
  /** Fraction free now. */
  free: number;
  /** Live partitions on it. */
  partitions: number;
  /** The physical GPU's UUID ("" when the device maps to none, e.g. a CPU OpenCL device). */
  uuid: string;
  /** Its PCI bus id ("" when unknown). */
  pciBusId: string;
  /** "nvidia", "amd", "intel" or "" (no device access). */
  vendor: string;
}

/** A GPU partition held on a worker (Chronos). */
export interface Partition {
  /** Partition id. */
  id: string;
  /** Node it lives on. */
  nodeId: string;
  /** Device index on that node. */
  device: number;
  /** Memory fraction. */
  memory: number;
  /** Owning user. */
  owner: string;
  /** Job that holds it ("" when none). */
  jobId: string;
  /** Expiry, Unix epoch milliseconds. */
  expiresAtMs: number;
}

/** Filters and paging for {@link CumulusClient.listJobs}. */
export interface ListJobsOptions {
  /** Only jobs in one of these states (default any). */
  states?: JobState[];
  /** Only jobs of this user (default any). */
  user?: string;
  /** Jobs per page (server default 100, max 1000). */
  pageSize?: number;
  /** Token from a previous page's `nextPageToken`. */
  pageToken?: string;
}

/** One page of jobs. */
export interface JobPage {
  /** The jobs, newest first. */
  jobs: JobRecord[];
  /** Pass as `pageToken` for the next page; "" on the last page. */
  nextPageToken: string;
}
