/**
 * A job's container resources and user: CPU cores and memory from the spec,
 * filled from the operator's defaults and held to the operator's maxima, and
 * whether the job may run as its image's own user (issue 16, item 3).
 * @module
 */
import { BYTES_GRAMMAR, formatBytes, parseBytesText } from "./bytes.ts";
import { InvalidArgumentError } from "./errors.ts";

/** The operator's defaults and maxima for job containers (config `job_*`). */
export interface JobResourceLimits {
  /** Cores a job gets when its spec names none. */
  cpuDefault: number;
  /** Most cores a spec may ask. */
  cpuMax: number;
  /** Bytes of memory a job gets when its spec names none. */
  memoryDefault: number;
  /** Most bytes of memory a spec may ask. */
  memoryMax: number;
  /** Whether a spec may ask to run as its image's own user (`allow_image_user`). */
  allowImageUser: boolean;
}

/** What a spec asks, as it arrives from the wire. */
export interface RawJobResources {
  /** Cores (0 or absent: the default). */
  cpu?: number;
  /** A size ("8GiB"; "" or absent: the default). */
  memory?: string;
  /** Run as the image's user. */
  imageUser?: boolean;
}

/** What a job gets: every value filled in. */
export interface JobResources {
  /** CPU cores (a float > 0). */
  cpu: number;
  /** Memory limit in bytes (> 0). */
  memoryBytes: number;
  /** Present and true when the job runs as its image's own user. */
  imageUser?: boolean;
}

/** Fewest bytes of memory a job may ask: below it Python itself does not start. */
export const MIN_JOB_MEMORY_BYTES = 32 * 1024 * 1024;

/** Smallest CPU share a job may ask (Docker refuses a CFS quota under 1 ms per 100 ms). */
export const MIN_JOB_CPU = 0.01;

/**
 * Resolves a spec's resources against the operator's limits. Throws
 * {@link InvalidArgumentError} naming `spec.cpu`, `spec.memory` or
 * `spec.image_user`, and the config key of a maximum it passes.
 * @example
 * parseJobResources({ cpu: 2 }, limits); // { cpu: 2, memoryBytes: limits.memoryDefault }
 */
export function parseJobResources(raw: RawJobResources, limits: JobResourceLimits): JobResources {
  const askedCpu = raw.cpu ?? 0;
  if (!Number.isFinite(askedCpu) || askedCpu < 0) {
    throw new InvalidArgumentError("spec.cpu", `must be a number of cores > 0, got ${askedCpu}`);
  }
  const cpu = askedCpu === 0 ? limits.cpuDefault : askedCpu;
  if (cpu < MIN_JOB_CPU) {
    throw new InvalidArgumentError("spec.cpu", `must be at least ${MIN_JOB_CPU} cores, got ${cpu}`);
  }
  if (cpu > limits.cpuMax) {
    throw new InvalidArgumentError(
      "spec.cpu",
      `must be at most ${limits.cpuMax} cores (the orchestrator's job_cpu_max), got ${cpu}`,
    );
  }
  const text = (raw.memory ?? "").trim();
  let memoryBytes = limits.memoryDefault;
  if (text !== "") {
    const parsed = parseBytesText(text);
    if (parsed === null) {
      throw new InvalidArgumentError(
        "spec.memory",
        `expected a size like "8GiB" or "512M" (${BYTES_GRAMMAR}), got ${JSON.stringify(text)}`,
      );
    }
    memoryBytes = parsed;
  }
  if (memoryBytes < MIN_JOB_MEMORY_BYTES) {
    throw new InvalidArgumentError(
      "spec.memory",
      `must be at least ${formatBytes(MIN_JOB_MEMORY_BYTES)}, got ${text || memoryBytes}`,
    );
  }
  if (memoryBytes > limits.memoryMax) {
    throw new InvalidArgumentError(
      "spec.memory",
      `must be at most ${
        formatBytes(limits.memoryMax)
      } (the orchestrator's job_memory_max), got ${text}`,
    );
  }
  if (raw.imageUser && !limits.allowImageUser) {
    throw new InvalidArgumentError(
      "spec.image_user",
      "this orchestrator runs every job as its job user (allow_image_user is off)",
    );
  }
  return { cpu, memoryBytes, ...(raw.imageUser ? { imageUser: true } : {}) };
}
