/**
 * The job a TypeScript program runs in, from the environment the orchestrator
 * and the worker's GPU runtime give every job container (the Python SDK's
 * `cumulus.current_job()`): its partition, its GPUs and their UUIDs.
 * @module
 */

/** What a running job knows about itself. */
export interface JobContext {
  /** Job id (`CUMULUS_JOB_ID`). */
  jobId: string;
  /** Attempt number, from 1 (`CUMULUS_ATTEMPT`). */
  attempt: number;
  /** Fraction of one GPU asked for; 1 for whole GPUs (`CUMULUS_GPU_MEMORY`). */
  gpuMemory: number;
  /** GPUs held (`CUMULUS_GPU_COUNT`). */
  gpuCount: number;
  /** Partition bytes per GPU, set by the GPU runtime on workers with device access, else null. */
  gpuMemoryBytes: number | null;
  /** The first Chronos partition, or null when the job holds none. */
  partitionId: string | null;
  /** Every partition, one per GPU, in GPU order. */
  partitionIds: string[];
  /** The worker's device index of the first GPU, or null. */
  device: number | null;
  /** The worker's device index of each GPU (CUDA numbers them 0..n-1 inside the job). */
  devices: number[];
  /** The physical GPUs' UUIDs, in the same order; empty on workers without device access. */
  gpuUuids: string[];
  /** When the partition expires, Unix epoch ms (0 when unknown). */
  deadlineMs: number;
}

function list(text: string | undefined): string[] {
  return (text ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
}

function int(text: string | undefined, fallback: number): number {
  const n = Number(text);
  return text !== undefined && text !== "" && Number.isFinite(n) ? n : fallback;
}

/**
 * This process's job, or null outside a Cumulus job (no `CUMULUS_JOB_ID`).
 * Reads `Deno.env` unless given another lookup (needs `--allow-env` then).
 * @param env Variable lookup; defaults to `Deno.env.get`.
 * @returns The job's context, or null.
 * @example
 * const job = currentJob();
 * if (job) console.log(`job ${job.jobId} on GPU ${job.gpuUuids[0] ?? "(none)"}`);
 */
export function currentJob(
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): JobContext | null {
  const jobId = env("CUMULUS_JOB_ID") ?? "";
  if (jobId === "") return null;
  const partitionId = env("CUMULUS_PARTITION_ID") || null;
  const partitionIds = list(env("CUMULUS_PARTITION_IDS"));
  const device = env("CUMULUS_GPU_DEVICE") ? int(env("CUMULUS_GPU_DEVICE"), -1) : -1;
  const devices = list(env("CUMULUS_GPU_DEVICES")).map(Number).filter(Number.isInteger);
  const bytes = int(env("CUMULUS_GPU_MEMORY_BYTES"), 0);
  return {
    jobId,
    attempt: int(env("CUMULUS_ATTEMPT"), 1),
    gpuMemory: int(env("CUMULUS_GPU_MEMORY"), 0),
    gpuCount: int(env("CUMULUS_GPU_COUNT"), 1),
    gpuMemoryBytes: bytes > 0 ? bytes : null,
    partitionId,
    partitionIds: partitionIds.length > 0 ? partitionIds : partitionId ? [partitionId] : [],
    device: device >= 0 ? device : null,
    devices: devices.length > 0 ? devices : device >= 0 ? [device] : [],
    gpuUuids: list(env("CUMULUS_GPU_UUIDS")),
    deadlineMs: int(env("CUMULUS_DEADLINE_MS"), 0),
  };
}
