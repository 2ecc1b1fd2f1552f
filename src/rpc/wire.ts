/**
 * Conversions between stored records and proto-loader message objects.
 * @module
 */
import {
  devicesOf,
  type JobRecord,
  type JobState,
  type LogLine,
  partitionsOf,
} from "../core/mod.ts";

/** proto `Job` as a plain object (proto-loader camelCase). */
export interface WireJob {
  id: string;
  spec: Record<string, unknown>;
  state: JobState;
  hasExitCode: boolean;
  exitCode: number;
  reason: string;
  createdAtMs: number;
  startedAtMs: number;
  finishedAtMs: number;
  attempts: number;
  nodeId: string;
  serviceId: string;
  logSeq: number;
  hasResult: boolean;
  bundleBytes: number;
  partitionId: string;
  gpuDevice: number;
  deadlineMs: number;
  lastCheckpointStep: number;
  lastCheckpointTier: string;
  lastCheckpointAtMs: number;
  functionBytes: number;
  resultRemovedAtMs: number;
  partitionIds: string[];
  gpuDevices: number[];
  reasonCode: string;
}

/** proto `LogLine` as a plain object. */
export interface WireLogLine {
  seq: number;
  stream: "STDOUT" | "STDERR";
  timeMs: number;
  text: string;
}

const NO_BYTES = new Uint8Array();

/** What a job's env values are replaced with where they are not shown. */
export const HIDDEN_ENV_VALUE = "<hidden>";

/** Options of {@link jobToWire}. */
export interface WireJobOptions {
  /**
   * Send the env's values (GetJob, the submitter's own reply). Listings and
   * watch streams send the names only, each value {@link HIDDEN_ENV_VALUE}:
   * env often carries secrets, and a listing goes to every client.
   */
  envValues?: boolean;
}

/**
 * Converts a stored job to its wire form. The job token never leaves, and
 * neither does the pickled function (possibly megabytes, echoed by every
 * listing otherwise): clients get its size in `functionBytes`, and only the
 * job's runtime reads it, with Runtime.FetchFunction. Env values leave only
 * when asked for ({@link WireJobOptions}).
 */
export function jobToWire(
  job: JobRecord,
  logSeq = job.logSeq,
  opts: WireJobOptions = {},
): WireJob {
  const s = job.spec;
  return {
    id: job.id,
    spec: {
      image: s.image,
      command: s.command,
      function: NO_BYTES,
      env: opts.envValues
        ? s.env
        : Object.fromEntries(Object.keys(s.env).map((k) => [k, HIDDEN_ENV_VALUE])),
      gpuMemory: s.gpuMemory,
      gpuMemorySize: s.gpuMemoryBytes ? `${s.gpuMemoryBytes}B` : "",
      duration: s.duration,
      gpuCount: s.gpuCount,
      constraints: s.constraints,
      retry: {
        resume: s.resume,
        maxAttempts: s.maxAttempts,
        resumeOnExpiry: s.resumeOnExpiry ?? false,
      },
      checkpoint: { s3Prefix: s.s3Prefix },
      user: s.user,
      name: s.name,
      workdir: s.workdir,
      resultRetention: s.resultRetention ?? 0,
      cpu: s.cpu ?? 0,
      memory: s.memoryBytes ? `${s.memoryBytes}B` : "",
      imageUser: s.imageUser ?? false,
    },
    state: job.state,
    hasExitCode: job.exitCode !== null,
    exitCode: job.exitCode ?? 0,
    reason: job.reason,
    createdAtMs: job.createdAt,
    startedAtMs: job.startedAt ?? 0,
    finishedAtMs: job.finishedAt ?? 0,
    attempts: job.attempts,
    nodeId: job.nodeId,
    serviceId: job.serviceId,
    logSeq,
    hasResult: job.hasResult,
    bundleBytes: job.bundleBytes,
    partitionId: job.partitionId ?? "",
    gpuDevice: job.gpuDevice ?? 0,
    deadlineMs: job.deadlineMs ?? 0,
    lastCheckpointStep: job.lastCheckpoint?.step ?? 0,
    lastCheckpointTier: job.lastCheckpoint?.tier ?? "",
    lastCheckpointAtMs: job.lastCheckpoint?.atMs ?? 0,
    functionBytes: job.functionBytes ?? s.function.length,
    resultRemovedAtMs: job.resultRemovedAt ?? 0,
    partitionIds: partitionsOf(job),
    gpuDevices: job.partitionId ? devicesOf(job) : [],
    reasonCode: job.reasonCode ?? "",
  };
}

/** Converts a stored log line to its wire form. */
export function lineToWire(line: LogLine): WireLogLine {
  return {
    seq: line.seq,
    stream: line.stream === "stderr" ? "STDERR" : "STDOUT",
    timeMs: line.timeMs,
    text: line.text,
  };
}
