/**
 * The job model: spec, states and records. External input (gRPC, CLI flags)
 * is parsed into these types once, at the edge, by {@link parseJobSpec}.
 * @module
 */
import { BYTES_GRAMMAR, parseBytesText } from "./bytes.ts";
import { InvalidArgumentError } from "./errors.ts";
import type { CheckpointMark } from "./checkpoint.ts";
import {
  type JobResourceLimits,
  parseJobResources,
  type RawJobResources,
} from "./job_resources.ts";

/** Lifecycle states (DESIGN.md section 3). */
export type JobState =
  | "QUEUED"
  | "SCHEDULED"
  | "RUNNING"
  | "SUCCEEDED"
  | "FAILED"
  | "CANCELLED"
  | "EXPIRED"
  | "RESUMING";

/** Every state, in lifecycle order. */
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

/** States a job never leaves. */
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set<JobState>([
  "SUCCEEDED",
  "FAILED",
  "CANCELLED",
  "EXPIRED",
]);

/** True when `state` is final. */
export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.has(state);
}

/** Allowed transitions; anything else is a bug and is refused by the store. */
export const TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  QUEUED: ["SCHEDULED", "CANCELLED", "FAILED"],
  SCHEDULED: ["RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED", "RESUMING", "QUEUED"],
  RUNNING: ["SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED", "RESUMING"],
  RESUMING: ["SCHEDULED", "FAILED", "CANCELLED", "QUEUED"],
  SUCCEEDED: [],
  FAILED: [],
  CANCELLED: [],
  EXPIRED: [],
};

/**
 * Codes for why a job ended (or resumed, or waits), for programs; `reason`
 * is the text for people. Behaviour is decided from the code, never from the
 * text (see {@link isInfrastructure}).
 * - `EXIT_CODE`: the job's process exited non-zero by itself.
 * - `KILLED`: its container was killed by a signal nobody in Cumulus sent.
 * - `TASK_FAILED`: Swarm failed the task with no exit code (the container
 *   could not start, e.g. an OCI runtime error).
 * - `TASK_LOST`: Swarm shut the task down or lost it (node drained or lost).
 * - `REJECTED`: Swarm refused the task (bad image, mount or constraint).
 * - `NETWORK_STALE`: Swarm refused the task because its node kept a stale copy
 *   of the jobs' network after its Docker engine restarted (moby/moby#37087);
 *   the orchestrator made the network again and starts the same attempt anew.
 * - `START_FAILED`: the orchestrator could not create the job's service.
 * - `SERVICE_REMOVED`: the service was removed outside Cumulus.
 * - `SERVICE_VANISHED`: the service was gone when a restarted orchestrator looked.
 * - `EXPIRED`: the job's duration was over (stopped by the node's agent
 *   daemon or by the orchestrator's backstop).
 * - `CANCELLED`: a user cancelled it.
 * - `GPU_MEMORY_EXCEEDED`: the job failed after running out of its GPU
 *   partition's memory (an allocation past the partition's hard limit).
 * - `MPS_FAULT`: its GPU's MPS server ended it (another job's fatal error).
 * - `MEMORY_EXCEEDED`: the kernel's OOM killer ended a process of the job
 *   for passing its container's memory limit (`spec.memory`).
 * - `RESULT_REFUSED`: the orchestrator refused the job's result (larger than
 *   `max_result_bytes`); set while the job still runs, it fails the job
 *   however it exits.
 */
export const REASON_CODES = {
  EXIT_CODE: "EXIT_CODE",
  KILLED: "KILLED",
  TASK_FAILED: "TASK_FAILED",
  TASK_LOST: "TASK_LOST",
  REJECTED: "REJECTED",
  NETWORK_STALE: "NETWORK_STALE",
  START_FAILED: "START_FAILED",
  SERVICE_REMOVED: "SERVICE_REMOVED",
  SERVICE_VANISHED: "SERVICE_VANISHED",
  EXPIRED: "EXPIRED",
  CANCELLED: "CANCELLED",
  GPU_MEMORY_EXCEEDED: "GPU_MEMORY_EXCEEDED",
  MPS_FAULT: "MPS_FAULT",
  RESULT_REFUSED: "RESULT_REFUSED",
  MEMORY_EXCEEDED: "MEMORY_EXCEEDED",
} as const;

/** One of {@link REASON_CODES}, or "" for none. */
export type ReasonCode = typeof REASON_CODES[keyof typeof REASON_CODES] | "";

/**
 * True when a job that ended with `code` did not end by itself: its
 * container, task or GPU server was lost under it. Such a job resumes when it
 * may and has attempts left. (A switch, so a new code must be placed here.)
 */
export function isInfrastructure(code: ReasonCode): boolean {
  switch (code) {
    case "KILLED":
    case "TASK_FAILED":
    case "TASK_LOST":
    case "SERVICE_REMOVED":
    case "MPS_FAULT":
    case "NETWORK_STALE":
      return true;
    case "EXIT_CODE":
    case "REJECTED":
    case "START_FAILED":
    case "SERVICE_VANISHED":
    case "EXPIRED":
    case "CANCELLED":
    case "GPU_MEMORY_EXCEEDED":
    case "RESULT_REFUSED":
    case "MEMORY_EXCEEDED":
    case "":
      return false;
    default: {
      const unknown: never = code;
      throw new Error(`unknown reason code ${unknown}`);
    }
  }
}

/** The partitions of a record's current attempt, in GPU order (old records: the single one). */
export function partitionsOf(job: Pick<JobRecord, "partitionId" | "partitionIds">): string[] {
  if (job.partitionIds && job.partitionIds.length > 0) return job.partitionIds;
  return job.partitionId ? [job.partitionId] : [];
}

/** The devices a record was placed on, in GPU order (old records: the single one). */
export function devicesOf(job: Pick<JobRecord, "gpuDevice" | "gpuDevices">): number[] {
  return job.gpuDevices && job.gpuDevices.length > 0 ? job.gpuDevices : [job.gpuDevice];
}

/** A validated job specification. */
export interface JobSpec {
  /** Image reference as the user gave it (default filled in by the orchestrator). */
  image: string;
  /** argv; empty only when `function` is set. */
  command: string[];
  /** Pickled Python call, or empty. */
  function: Uint8Array;
  /** Extra environment for the container. */
  env: Record<string, string>;
  /**
   * Fraction of one device's memory, 0 < f < 1; 1 for whole GPUs (then
   * {@link gpuCount} says how many); 0 when {@link gpuMemoryBytes} is set.
   */
  gpuMemory: number;
  /**
   * Absolute memory per device in bytes ("20GiB" on the wire), or 0 when the
   * job asks for a fraction. Placement turns it into each device's fraction.
   */
  gpuMemoryBytes?: number;
  /** Partition lifetime in seconds. */
  duration: number;
  /** Devices wanted: 1, or 1..8 whole GPUs on one worker. */
  gpuCount: number;
  /** Swarm placement constraints. */
  constraints: string[];
  /** Resume on infrastructure failure (true exactly when maxAttempts > 1). */
  resume: boolean;
  /** Attempts in total (>= 1). */
  maxAttempts: number;
  /**
   * Also resume when the partition's duration is over, if a checkpoint was
   * reported and attempts remain (see `src/orchestrator/expiry.ts`). Absent in
   * records stored before it existed: false.
   */
  resumeOnExpiry?: boolean;
  /** S3 prefix for checkpoints ("" = default). */
  s3Prefix: string;
  /** Submitting user ("anonymous" when not given). */
  user: string;
  /** Display name ("" when not given). */
  name: string;
  /** Working directory inside the container ("" = image default). */
  workdir: string;
  /**
   * Seconds the result is kept after the job ends (0 = forever). Filled from
   * the orchestrator's result_retention at submit; absent in records stored
   * before it existed, which then follow the current result_retention.
   */
  resultRetention?: number;
  /**
   * CPU cores and memory bytes of the container, filled from the operator's
   * defaults at submit; absent in records stored before they existed (the
   * current defaults then apply).
   */
  cpu?: number;
  /** See {@link cpu}. */
  memoryBytes?: number;
  /** True when the job runs as its image's own user (allowed by `allow_image_user`). */
  imageUser?: boolean;
}

/** One stored job. */
export interface JobRecord {
  /** Job id (`j-` + 12 hex chars). */
  id: string;
  /** Monotonic submission number: FIFO order. */
  seq: number;
  spec: JobSpec;
  state: JobState;
  /** Process exit code once known. */
  exitCode: number | null;
  /** Why the job is in its state. */
  reason: string;
  /** Epoch ms. */
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  attempts: number;
  nodeId: string;
  serviceId: string;
  /** Highest stored log sequence number. */
  logSeq: number;
  /** Secret the job's container presents to the Runtime service. */
  token: string;
  bundleBytes: number;
  hasResult: boolean;
  /** Chronos partition held for the current attempt ("" = none); the first of {@link partitionIds}. */
  partitionId: string;
  /** Device index of that partition on `nodeId`; the first of {@link gpuDevices}. */
  gpuDevice: number;
  /**
   * Every partition of the current attempt, in GPU order (one per GPU of a
   * whole-GPU job). Empty while none was created, and in records stored before
   * groups existed: read it with {@link partitionsOf}.
   */
  partitionIds?: string[];
  /** The device of each placed GPU, in order; read it with {@link devicesOf}. */
  gpuDevices?: number[];
  /** Why the job ended, as a code for programs ({@link REASON_CODES}); "" when none. */
  reasonCode?: ReasonCode;
  /** When the partition (and so the job) expires, epoch ms; 0 = no partition yet. */
  deadlineMs: number;
  /**
   * When the stored result was removed after its retention, epoch ms (the job
   * keeps `hasResult`); 0 or absent while it is kept.
   */
  resultRemovedAt?: number;
  /** The newest checkpoint the job's runtime reported, or null when none was. */
  lastCheckpoint: CheckpointMark | null;
  /**
   * Size of `spec.function`, set on records read by a listing: those leave
   * `spec.function` empty rather than read MBs of pickled calls per page.
   */
  functionBytes?: number;
}

/** Raw spec as it arrives from the wire (proto-loader object, camel-cased keys). */
export interface RawJobSpec extends RawJobResources {
  image?: string;
  command?: string[];
  function?: Uint8Array | null;
  env?: Record<string, string>;
  gpuMemory?: number;
  gpuMemorySize?: string;
  duration?: number;
  gpuCount?: number;
  constraints?: string[];
  retry?: { resume?: boolean; maxAttempts?: number; resumeOnExpiry?: boolean } | null;
  checkpoint?: { s3Prefix?: string } | null;
  user?: string;
  name?: string;
  workdir?: string;
  resultRetention?: number;
}

/** Limits applied while parsing a spec. */
export interface SpecLimits {
  /** Used when the spec names no image. */
  defaultImage: string;
  /** Longest allowed duration in seconds. */
  maxDuration: number;
  /** Default attempts when the spec says 0. */
  defaultMaxAttempts: number;
  /**
   * The orchestrator's result retention in seconds: what a spec saying 0 gets,
   * and the most one may ask (0 = results are kept forever, any value goes).
   * Absent: 0.
   */
  resultRetention?: number;
  /** Job container defaults and maxima; absent: the spec keeps no resources. */
  resources?: JobResourceLimits;
}

/**
 * Most bytes of a job's argv and of its env (names, values and separators). Every listing
 * returns them, so they are bounded to keep a page of jobs far under what clients accept
 * (64 MiB), and Docker refuses service specs past a few MiB anyway.
 */
export const MAX_COMMAND_BYTES = 128 * 1024;
/** See {@link MAX_COMMAND_BYTES}. */
export const MAX_ENV_BYTES = 64 * 1024;

const ENCODER = new TextEncoder();
function utf8Length(text: string): number {
  return ENCODER.encode(text).length;
}

const CONSTRAINT_RE = /^[A-Za-z0-9_.\-]+\s*(==|!=)\s*[A-Za-z0-9_.\-:/]+$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const USER_RE = /^[A-Za-z0-9_.@\-]{1,64}$/;

/**
 * Validates a wire spec and fills defaults. Throws {@link InvalidArgumentError}
 * naming the first bad field.
 * @example
 * parseJobSpec({ command: ["echo", "hi"], gpuMemory: 0.5, duration: 60 }, limits);
 */
export function parseJobSpec(raw: RawJobSpec, limits: SpecLimits): JobSpec {
  const command = raw.command ?? [];
  const fn = raw.function ?? new Uint8Array();
  if (command.length === 0 && fn.length === 0) {
    throw new InvalidArgumentError("spec.command", "must not be empty");
  }
  if (command.some((a) => typeof a !== "string" || a.includes("\0"))) {
    throw new InvalidArgumentError("spec.command", "arguments must be strings without NUL bytes");
  }
  const commandBytes = command.reduce((n, a) => n + utf8Length(a) + 1, 0);
  if (commandBytes > MAX_COMMAND_BYTES) {
    throw new InvalidArgumentError(
      "spec.command",
      `must be at most ${MAX_COMMAND_BYTES} bytes in all (pass data in the bundle), got ${commandBytes}`,
    );
  }
  if (command.length > 0 && command[0] === "") {
    throw new InvalidArgumentError("spec.command", "program name must not be empty");
  }
  const { gpuMemory, gpuMemoryBytes, gpuCount } = parseGpuDemand(raw);
  const duration = raw.duration ?? 0;
  if (!Number.isFinite(duration) || duration <= 0) {
    throw new InvalidArgumentError("spec.duration", `must be > 0 seconds, got ${duration}`);
  }
  if (duration > limits.maxDuration) {
    throw new InvalidArgumentError(
      "spec.duration",
      `must be at most ${limits.maxDuration} seconds, got ${duration}`,
    );
  }
  const image = (raw.image ?? "").trim() || limits.defaultImage;
  if (!isImageReference(image)) {
    throw new InvalidArgumentError(
      "spec.image",
      `not a valid image reference (name[:tag][@digest], or sha256:<id>), got ${
        JSON.stringify(image.slice(0, 300))
      }`,
    );
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw.env ?? {})) {
    if (!ENV_KEY_RE.test(k)) {
      throw new InvalidArgumentError("spec.env", `not a valid variable name: ${k}`);
    }
    if (k.startsWith("CUMULUS_")) {
      throw new InvalidArgumentError("spec.env", `${k}: the CUMULUS_ prefix is reserved`);
    }
    const value = String(v);
    if (value.includes("\0")) {
      throw new InvalidArgumentError("spec.env", `${k}: values must not contain NUL bytes`);
    }
    env[k] = value;
  }
  const envBytes = Object.entries(env).reduce(
    (n, [k, v]) => n + utf8Length(k) + utf8Length(v) + 2,
    0,
  );
  if (envBytes > MAX_ENV_BYTES) {
    throw new InvalidArgumentError(
      "spec.env",
      `must be at most ${MAX_ENV_BYTES} bytes in all (pass data in the bundle), got ${envBytes}`,
    );
  }
  const constraints = raw.constraints ?? [];
  for (const c of constraints) {
    if (!CONSTRAINT_RE.test(c)) {
      throw new InvalidArgumentError(
        "spec.constraints",
        `expected "key==value" or "key!=value", got ${JSON.stringify(c)}`,
      );
    }
  }
  const user = (raw.user ?? "").trim() || "anonymous";
  if (!USER_RE.test(user)) {
    throw new InvalidArgumentError("spec.user", `not a valid user name: ${user}`);
  }
  const maxAttempts = raw.retry?.maxAttempts || limits.defaultMaxAttempts;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100) {
    throw new InvalidArgumentError("spec.retry.max_attempts", `must be 1..100, got ${maxAttempts}`);
  }
  const resumeOnExpiry = raw.retry?.resumeOnExpiry === true;
  if (resumeOnExpiry && maxAttempts < 2) {
    throw new InvalidArgumentError(
      "spec.retry.resume_on_expiry",
      "needs max_attempts > 1 (each resumed attempt is one more attempt)",
    );
  }
  const name = raw.name ?? "";
  if (name.length > 128) {
    throw new InvalidArgumentError("spec.name", "must be at most 128 characters");
  }
  const resultRetention = parseResultRetention(
    raw.resultRetention ?? 0,
    limits.resultRetention ?? 0,
  );
  const workdir = raw.workdir ?? "";
  if (workdir !== "" && !workdir.startsWith("/")) {
    throw new InvalidArgumentError("spec.workdir", "must be an absolute path");
  }
  const resources = limits.resources ? parseJobResources(raw, limits.resources) : {};
  return {
    image,
    command: [...command],
    function: fn,
    env,
    gpuMemory,
    ...(gpuMemoryBytes > 0 ? { gpuMemoryBytes } : {}),
    duration,
    gpuCount,
    constraints: [...constraints],
    // Resuming is what extra attempts are for: any job allowed more than one
    // attempt is resumed after an infrastructure failure.
    resume: maxAttempts > 1,
    maxAttempts,
    ...(resumeOnExpiry ? { resumeOnExpiry } : {}),
    s3Prefix: parseS3Prefix(raw.checkpoint?.s3Prefix ?? ""),
    user,
    name,
    workdir,
    resultRetention,
    ...resources,
  };
}

// Docker's reference grammar (distribution/reference): [domain/]path[:tag][@digest].
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const IMAGE_REF_RE = new RegExp(
  `^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*` +
    "(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?" +
    "(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$",
);
const IMAGE_ID_RE = /^sha256:[0-9a-f]{64}$/;

/**
 * True when `ref` is an image reference by Docker's grammar (`name[:tag][@digest]`,
 * name = `[domain[:port]/]path`, lowercase path components) or an image id (`sha256:<64 hex>`),
 * at most 255 characters. Checked at the edge because the reference goes into the Docker
 * Engine API's URL path: `../` or `%2e%2e` there would address other endpoints.
 * @example
 * isImageReference("pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"); // true
 * isImageReference("../../info"); // false
 */
export function isImageReference(ref: string): boolean {
  return ref.length <= 255 && (IMAGE_REF_RE.test(ref) || IMAGE_ID_RE.test(ref));
}

/** Most whole GPUs one job may ask for (all on one worker). */
export const MAX_GPU_COUNT = 8;

/**
 * The GPU part of a spec: a fraction of one GPU (`gpu_memory` in (0, 1), or
 * an absolute `gpu_memory_size`), or N whole GPUs (`gpu_count` N, or
 * `gpu_memory` N for an integer N >= 1), as the original system took 0.1-0.9
 * of a GPU or 1-8 whole GPUs. Whole GPUs come out as `gpuMemory` 1.
 */
function parseGpuDemand(
  raw: RawJobSpec,
): { gpuMemory: number; gpuMemoryBytes: number; gpuCount: number } {
  const sizeText = (raw.gpuMemorySize ?? "").trim();
  const gpuMemoryBytes = sizeText === "" ? 0 : parseMemorySize(sizeText);
  const memory = raw.gpuMemory ?? 0;
  const count = raw.gpuCount ?? 0;
  if (!Number.isInteger(count) || count < 0 || count > MAX_GPU_COUNT) {
    throw new InvalidArgumentError(
      "spec.gpu_count",
      `must be 1..${MAX_GPU_COUNT} whole GPUs, got ${count}`,
    );
  }
  if (!Number.isFinite(memory) || memory < 0) {
    throw new InvalidArgumentError(
      "spec.gpu_memory",
      `must be a fraction in (0, 1) or a whole number of GPUs, got ${memory}`,
    );
  }
  if (gpuMemoryBytes > 0) {
    if (memory !== 0) {
      throw new InvalidArgumentError(
        "spec.gpu_memory_size",
        "give either gpu_memory (a fraction) or gpu_memory_size, not both",
      );
    }
    if (count > 1) {
      throw new InvalidArgumentError(
        "spec.gpu_count",
        `gpu_memory_size is a share of one GPU; ask whole GPUs with gpu_count alone, got ${count}`,
      );
    }
    return { gpuMemory: 0, gpuMemoryBytes, gpuCount: 1 };
  }
  if (memory > 0 && memory < 1) {
    if (count > 1) {
      throw new InvalidArgumentError(
        "spec.gpu_count",
        `a fraction of a GPU (gpu_memory ${memory}) is for one GPU; ask whole GPUs with gpu_count alone, got ${count}`,
      );
    }
    return { gpuMemory: memory, gpuMemoryBytes: 0, gpuCount: 1 };
  }
  if (memory >= 1) {
    if (!Number.isInteger(memory) || memory > MAX_GPU_COUNT) {
      throw new InvalidArgumentError(
        "spec.gpu_memory",
        `above 1 it counts whole GPUs: must be a whole number 1..${MAX_GPU_COUNT}, got ${memory}`,
      );
    }
    // gpu_memory 1 with a count is how whole-GPU jobs are stored and read back.
    if (memory > 1 && count > 1 && count !== memory) {
      throw new InvalidArgumentError(
        "spec.gpu_count",
        `gpu_memory ${memory} already asks ${memory} whole GPUs, got gpu_count ${count}`,
      );
    }
    return { gpuMemory: 1, gpuMemoryBytes: 0, gpuCount: memory > 1 ? memory : Math.max(1, count) };
  }
  // No memory given: whole GPUs when a count is, else nothing was asked.
  if (count === 0) {
    throw new InvalidArgumentError(
      "spec.gpu_memory",
      "must be a fraction in (0, 1) or a whole number of GPUs (or give gpu_count), got 0",
    );
  }
  return { gpuMemory: 1, gpuMemoryBytes: 0, gpuCount: count };
}

/** True when the spec asks whole GPUs (its partitions are exclusive, no MPS). */
export function wantsWholeGpus(spec: Pick<JobSpec, "gpuMemory" | "gpuMemoryBytes">): boolean {
  return !spec.gpuMemoryBytes && spec.gpuMemory >= 1;
}

function parseResultRetention(asked: number, limit: number): number {
  if (!Number.isFinite(asked) || asked < 0) {
    throw new InvalidArgumentError(
      "spec.result_retention",
      `must be >= 0 seconds (0: the orchestrator's), got ${asked}`,
    );
  }
  if (asked === 0) return limit;
  if (limit > 0 && asked > limit) {
    throw new InvalidArgumentError(
      "spec.result_retention",
      `must be at most ${limit} seconds (the orchestrator's result_retention), got ${asked}`,
    );
  }
  return asked;
}

/**
 * Parses an absolute memory size ("20GiB", "512 MiB", "1.5GB", "20G") into
 * bytes with the one size grammar ({@link parseBytesText}); a unit is
 * required, since a bare number of GPU memory means whole GPUs.
 * Throws {@link InvalidArgumentError} naming `spec.gpu_memory_size`.
 * @example
 * parseMemorySize("20GiB"); // 21474836480
 */
export function parseMemorySize(text: string): number {
  const bytes = parseBytesText(text, { requireUnit: true });
  if (bytes === null) {
    throw new InvalidArgumentError(
      "spec.gpu_memory_size",
      `expected a size with a unit like "20GiB" or "512M" (${BYTES_GRAMMAR}), got ${
        JSON.stringify(text)
      }`,
    );
  }
  if (bytes <= 0) {
    throw new InvalidArgumentError("spec.gpu_memory_size", `must be > 0, got ${text}`);
  }
  return bytes;
}

/**
 * Checks a job's S3 key prefix for checkpoints: "" (the site's prefix), or up
 * to 8 segments of letters, digits, `.`, `_` and `-` joined by `/`, at most
 * 256 characters, no empty, `.` or `..` segment. Keys are built from it, so
 * nothing in it may climb out of or around the layout.
 * Throws {@link InvalidArgumentError} naming `spec.checkpoint.s3_prefix`.
 * @example
 * parseS3Prefix("team-a/runs"); // "team-a/runs"
 */
export function parseS3Prefix(text: string): string {
  if (text === "") return "";
  const segments = text.split("/");
  const bad = text.length > 256 || segments.length > 8 ||
    segments.some((s) => !/^[A-Za-z0-9._-]+$/.test(s) || s === "." || s === "..");
  if (bad) {
    throw new InvalidArgumentError(
      "spec.checkpoint.s3_prefix",
      "must be up to 8 segments of letters, digits, '.', '_' and '-' joined by '/' " +
        `(no '..', no leading or trailing '/', at most 256 characters), got ${
          JSON.stringify(text.slice(0, 300))
        }`,
    );
  }
  return text;
}

/** A stored log line. */
export interface LogLine {
  /** 1-based, gap-free per job. */
  seq: number;
  stream: "stdout" | "stderr";
  /** Epoch ms when the worker saw the line. */
  timeMs: number;
  text: string;
}
