/**
 * The agent's GPU-layer error, for what the OS refuses while handing a partition its GPU
 * (writing a grant, starting MPS) and for malformed GPU settings.
 * @module
 */
import { ChronosError } from "./chronos.ts";

/** Exit status (and Chronos status) of each {@link GpuLayerError} kind. */
export const GPU_ERROR_STATUS = {
  /** A grant could not be written, or MPS could not be started (Chronos's IO). */
  io: 8,
  /** A GPU setting in the environment is malformed (Chronos's CONFIG). */
  config: 10,
} as const;

/**
 * A GPU-layer failure. A {@link ChronosError}, so agent commands report it like Chronos's own
 * (one line on stderr, `{"error":…}` with `--json`, exit status 8 or 10).
 */
export class GpuLayerError extends ChronosError {
  /** Creates the error; `status` is one of {@link GPU_ERROR_STATUS}. */
  constructor(
    status: typeof GPU_ERROR_STATUS[keyof typeof GPU_ERROR_STATUS],
    message: string,
  ) {
    super(status, message);
    this.name = "GpuLayerError";
  }
}
