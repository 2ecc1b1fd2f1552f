/**
 * Conversions between proto-loader message objects (camelCase, enums as
 * names, int64 as numbers, defaults filled) and the SDK's types. Incoming
 * messages are parsed here once and trusted afterwards.
 * @module
 */
import {
  DEFAULT_DURATION,
  DEFAULT_GPU_MEMORY,
  JOB_STATES,
  type JobEvent,
  type JobRecord,
  type JobSpec,
  type JobSpecInput,
  type JobState,
  type LogLine,
  type Partition,
  type Worker,
} from "./types.ts";

/** A proto-loader message object (fields unverified). */
export type WireMessage = Record<string, unknown>;

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function num(v: unknown): number {
  if (typeof v === "number") return v;
  if (typeof v === "string" && v !== "") return Number(v);
  return 0;
}

function bool(v: unknown): boolean {
  return v === true;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(str) : [];
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === "object") {
    for (const [k, val] of Object.entries(v)) out[k] = str(val);
  }
  return out;
}

function bytes(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? new Uint8Array(v) : new Uint8Array();
}

function obj(v: unknown): WireMessage {
  return v && typeof v === "object" ? v as WireMessage : {};
}

function state(v: unknown): JobState {
  const s = str(v);
  return (JOB_STATES as readonly string[]).includes(s) ? s as JobState : "QUEUED";
}

/** Builds the wire `JobSpec` for a submission, filling the SDK defaults. */
export function specToWire(spec: JobSpecInput): WireMessage {
  return {
    image: spec.image ?? "",
    command: spec.command ?? [],
    function: spec.function ?? new Uint8Array(),
    env: spec.env ?? {},
    // An absolute size or a GPU count replaces the default fraction (a count
    // alone asks whole GPUs; the orchestrator refuses a fraction with a count > 1).
    gpuMemory: spec.gpuMemory ?? (spec.gpuMemorySize || spec.gpuCount ? 0 : DEFAULT_GPU_MEMORY),
    gpuMemorySize: spec.gpuMemorySize ?? "",
    duration: spec.duration ?? DEFAULT_DURATION,
    gpuCount: spec.gpuCount ?? 0,
    constraints: spec.constraints ?? [],
    retry: {
      resume: spec.retry?.resume ?? false,
      maxAttempts: spec.retry?.maxAttempts ?? 0,
      resumeOnExpiry: spec.retry?.resumeOnExpiry ?? false,
    },
    checkpoint: { s3Prefix: spec.checkpoint?.s3Prefix ?? "" },
    user: spec.user ?? "",
    name: spec.name ?? "",
    workdir: spec.workdir ?? "",
    resultRetention: spec.resultRetention ?? 0,
    cpu: spec.cpu ?? 0,
    memory: spec.memory ?? "",
    imageUser: spec.imageUser ?? false,
  };
}

/** Parses a wire `JobSpec`. */
export function specFromWire(m: WireMessage): JobSpec {
  const retry = obj(m.retry);
  return {
    image: str(m.image),
    command: strings(m.command),
    function: bytes(m.function),
    env: stringMap(m.env),
    gpuMemory: num(m.gpuMemory),
    gpuMemorySize: str(m.gpuMemorySize),
    duration: num(m.duration),
    gpuCount: num(m.gpuCount),
    constraints: strings(m.constraints),
    retry: {
      resume: bool(retry.resume),
      maxAttempts: num(retry.maxAttempts),
      resumeOnExpiry: bool(retry.resumeOnExpiry),
    },
    checkpoint: { s3Prefix: str(obj(m.checkpoint).s3Prefix) },
    user: str(m.user),
    name: str(m.name),
    workdir: str(m.workdir),
    resultRetention: num(m.resultRetention),
    cpu: num(m.cpu),
    memory: str(m.memory),
    imageUser: bool(m.imageUser),
  };
}

/** Parses a wire `Job`; zero timestamps and an absent exit code become null. */
export function jobFromWire(m: WireMessage): JobRecord {
  const started = num(m.startedAtMs);
  const finished = num(m.finishedAtMs);
  return {
    id: str(m.id),
    spec: specFromWire(obj(m.spec)),
    state: state(m.state),
    exitCode: bool(m.hasExitCode) ? num(m.exitCode) : null,
    reason: str(m.reason),
    createdAtMs: num(m.createdAtMs),
    startedAtMs: started > 0 ? started : null,
    finishedAtMs: finished > 0 ? finished : null,
    attempts: num(m.attempts),
    nodeId: str(m.nodeId),
    serviceId: str(m.serviceId),
    logSeq: num(m.logSeq),
    hasResult: bool(m.hasResult),
    bundleBytes: num(m.bundleBytes),
    // An orchestrator older than function_bytes still echoes the bytes.
    functionBytes: num(m.functionBytes) || bytes(obj(m.spec).function).length,
    resultRemovedAtMs: num(m.resultRemovedAtMs) > 0 ? num(m.resultRemovedAtMs) : null,
    partitionIds: strings(m.partitionIds),
    gpuDevices: Array.isArray(m.gpuDevices) ? m.gpuDevices.map(num) : [],
    reasonCode: str(m.reasonCode),
    lastCheckpoint: num(m.lastCheckpointAtMs) > 0
      ? {
        step: num(m.lastCheckpointStep),
        tier: str(m.lastCheckpointTier),
        atMs: num(m.lastCheckpointAtMs),
      }
      : null,
  };
}

/** Parses a wire `LogLine`. */
export function lineFromWire(m: WireMessage): LogLine {
  return {
    seq: num(m.seq),
    stream: str(m.stream) === "STDERR" ? "stderr" : "stdout",
    timeMs: num(m.timeMs),
    text: str(m.text),
  };
}

/** Parses a wire `WatchJobEvent`. */
export function eventFromWire(m: WireMessage): JobEvent {
  const lines = Array.isArray(m.lines) ? m.lines.map((l) => lineFromWire(obj(l))) : [];
  return { lines, job: m.job ? jobFromWire(obj(m.job)) : null };
}

/** Parses a wire `Worker`. */
export function workerFromWire(m: WireMessage): Worker {
  return {
    nodeId: str(m.nodeId),
    hostname: str(m.hostname),
    state: str(m.state),
    availability: str(m.availability),
    role: str(m.role),
    labels: stringMap(m.labels),
    address: str(m.address),
    runningJobs: num(m.runningJobs),
    agent: str(m.agent),
    gpus: (Array.isArray(m.gpus) ? m.gpus : []).map((g) => {
      const o = obj(g);
      return {
        index: num(o.index),
        name: str(o.name),
        memoryBytes: num(o.memoryBytes),
        allocated: num(o.allocated),
        free: num(o.free),
        partitions: num(o.partitions),
        uuid: str(o.uuid),
        pciBusId: str(o.pciBusId),
        vendor: str(o.vendor),
      };
    }),
    deviceAccess: str(m.deviceAccess) || "none",
  };
}

/** Parses a wire `Partition`. */
export function partitionFromWire(m: WireMessage): Partition {
  return {
    id: str(m.id),
    nodeId: str(m.nodeId),
    device: num(m.device),
    memory: num(m.memory),
    owner: str(m.owner),
    jobId: str(m.jobId),
    expiresAtMs: num(m.expiresAtMs),
  };
}
