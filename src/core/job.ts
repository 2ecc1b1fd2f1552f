/**
 * The job model: spec, states and records. External input (gRPC, CLI flags)
 * is parsed into these types once, at the edge, by {@link parseJobSpec}.
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import type { CheckpointMark } from "./checkpoint.ts";

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
  /** Fraction of one device's memory, 0 < f <= 1; 0 when {@link gpuMemoryBytes} is set. */
  gpuMemory: number;
  /**
   * Absolute memory per device in bytes ("20GiB" on the wire), or 0 when the
   * job asks for a fraction. Placement turns it into each device's fraction.
   */
  gpuMemoryBytes?: number;
  /** Partition lifetime in seconds. */
  duration: number;
  /** Devices wanted (>= 1). */
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
  /** Chronos partition held for the current attempt ("" = none). */
  partitionId: string;
  /** Device index of that partition on `nodeId`. */
  gpuDevice: number;
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
export interface RawJobSpec {
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
  if (command.length > 0 && command[0] === "") {
    throw new InvalidArgumentError("spec.command", "program name must not be empty");
  }
  const sizeText = (raw.gpuMemorySize ?? "").trim();
  const gpuMemoryBytes = sizeText === "" ? 0 : parseMemorySize(sizeText);
  const gpuMemory = raw.gpuMemory ?? 0;
  if (gpuMemoryBytes > 0 && gpuMemory !== 0) {
    throw new InvalidArgumentError(
      "spec.gpu_memory_size",
      "give either gpu_memory (a fraction) or gpu_memory_size, not both",
    );
  }
  if (
    gpuMemoryBytes === 0 && (!Number.isFinite(gpuMemory) || gpuMemory <= 0 || gpuMemory > 1)
  ) {
    throw new InvalidArgumentError(
      "spec.gpu_memory",
      `must be a fraction in (0, 1], got ${gpuMemory}`,
    );
  }
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
  const gpuCount = raw.gpuCount || 1;
  if (!Number.isInteger(gpuCount) || gpuCount < 1 || gpuCount > 64) {
    throw new InvalidArgumentError("spec.gpu_count", `must be 1..64, got ${gpuCount}`);
  }
  const image = (raw.image ?? "").trim() || limits.defaultImage;
  if (/\s/.test(image) || image.length > 255) {
    throw new InvalidArgumentError("spec.image", `not a valid image reference: ${image}`);
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw.env ?? {})) {
    if (!ENV_KEY_RE.test(k)) {
      throw new InvalidArgumentError("spec.env", `not a valid variable name: ${k}`);
    }
    if (k.startsWith("CUMULUS_")) {
      throw new InvalidArgumentError("spec.env", `${k}: the CUMULUS_ prefix is reserved`);
    }
    env[k] = String(v);
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
    s3Prefix: raw.checkpoint?.s3Prefix ?? "",
    user,
    name,
    workdir,
    resultRetention,
  };
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

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/;
const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};

/**
 * Parses an absolute memory size ("20GiB", "512 MiB", "1.5GB") into bytes.
 * Throws {@link InvalidArgumentError} naming `spec.gpu_memory_size`.
 * @example
 * parseMemorySize("20GiB"); // 21474836480
 */
export function parseMemorySize(text: string): number {
  const m = SIZE_RE.exec(text.trim());
  if (!m) {
    throw new InvalidArgumentError(
      "spec.gpu_memory_size",
      `expected a size like "20GiB" or "512MiB" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), got ${
        JSON.stringify(text)
      }`,
    );
  }
  const bytes = Math.round(Number(m[1]) * SIZE_UNITS[m[2]]);
  if (!(bytes > 0) || !Number.isSafeInteger(bytes)) {
    throw new InvalidArgumentError("spec.gpu_memory_size", `must be > 0, got ${text}`);
  }
  return bytes;
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
