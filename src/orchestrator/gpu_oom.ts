/**
 * Telling a job that ran out of its GPU partition from any other failure. The
 * partition is a hard limit (MPS on NVIDIA, framework allocator caps
 * elsewhere): an allocation past it fails inside the job with the framework's
 * or CUDA's out-of-memory error, the job then exits non-zero, and its record
 * should say why in words a user acts on, with a code programs branch on.
 * @module
 */
import { REASON_CODES, type ReasonCode } from "../core/mod.ts";
import { formatBytes } from "../core/mod.ts";

/**
 * What the CUDA runtime, the driver API, PyTorch, TensorFlow, JAX and CuPy
 * print when an allocation fails. Matched case-sensitively on whole log lines.
 */
const OOM_PATTERNS: readonly RegExp[] = [
  /CUDA out of memory/, // PyTorch's torch.OutOfMemoryError message
  /torch\.(cuda\.)?OutOfMemoryError/,
  /CUDA_ERROR_OUT_OF_MEMORY/, // driver API (also JAX, TensorFlow)
  /cudaErrorMemoryAllocation/, // runtime API (also CuPy)
  /ResourceExhaustedError: .*OOM/, // TensorFlow
  /RESOURCE_EXHAUSTED: Out of memory/, // JAX / XLA
  /hipErrorOutOfMemory|HIP out of memory/, // ROCm
];

/** True when one of `lines` is a GPU out-of-memory error. */
export function isGpuOutOfMemory(lines: readonly string[]): boolean {
  return lines.some((line) => OOM_PATTERNS.some((re) => re.test(line)));
}

/**
 * What CUDA reports to an MPS client that its server terminated: after one
 * client's fatal GPU exception, every client of that GPU's server gets it.
 */
const MPS_TERMINATED_PATTERNS: readonly RegExp[] = [
  /cudaErrorMpsClientTerminated/,
  /CUDA_ERROR_MPS_CLIENT_TERMINATED/,
  /MPS client has been terminated by the server/,
];

/** True when one of `lines` says the job's MPS server terminated it. */
export function isMpsClientTerminated(lines: readonly string[]): boolean {
  return lines.some((line) => MPS_TERMINATED_PATTERNS.some((re) => re.test(line)));
}

/** The GPU share a failed job held, as {@link gpuOomOutcome} describes it. */
export interface HeldGpu {
  /** Bytes of the partition per GPU, or 0 when unknown. */
  bytes: number;
  /** How many GPUs the job held. */
  count: number;
  /** Whole GPUs (no MPS memory limit: the card itself ran out). */
  whole: boolean;
}

/**
 * The reason and code of a job that exited non-zero after a GPU
 * out-of-memory error in the last lines of its log, or null when it did not
 * run out of GPU memory.
 * @example
 * gpuOomOutcome(["torch.OutOfMemoryError: CUDA out of memory. Tried to ..."], 1,
 *   { bytes: 20 * 1024 ** 3, count: 1, whole: false });
 * // { reason: "exceeded its 20GiB GPU partition (CUDA out of memory); exited with code 1", ... }
 */
export function gpuOomOutcome(
  lines: readonly string[],
  exitCode: number,
  held: HeldGpu,
): { reason: string; reasonCode: ReasonCode } | null {
  if (exitCode === 0 || !isGpuOutOfMemory(lines)) return null;
  const size = held.bytes > 0 ? `${formatBytes(held.bytes)} ` : "";
  const what = held.whole
    ? `ran out of the memory of its ${held.count > 1 ? `${held.count} whole GPUs` : "whole GPU"}` +
      (held.bytes > 0 ? ` (${formatBytes(held.bytes)} each)` : "")
    : `exceeded its ${size}GPU partition`;
  return {
    reason: `${what} (CUDA out of memory); exited with code ${exitCode}`,
    reasonCode: REASON_CODES.GPU_MEMORY_EXCEEDED,
  };
}
