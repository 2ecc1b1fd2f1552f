/**
 * Attempt hook: the job's GPU partition as a cause of failure. A GPU job
 * that exited non-zero after an out-of-memory error in its last log lines
 * ran past its partition: its reason says so, with the partition's size.
 * One whose MPS server faulted (another client's fatal error ends every
 * client on that GPU) did not fail by itself: an infrastructure failure,
 * so it resumes.
 * @module
 */
import { isInfrastructure, REASON_CODES } from "../../core/mod.ts";
import type { AttemptHook } from "../attempt.ts";
import { gpuOomOutcome, isMpsClientTerminated } from "../gpu_oom.ts";

/** Log lines searched for a GPU out-of-memory or MPS error when a GPU job fails. */
const GPU_TAIL_LINES = 60;

/** See the module doc. */
export function gpuHook(): AttemptHook {
  return {
    name: "gpu",
    async explain(a, outcome) {
      if (outcome.state !== "FAILED" || a.cancelled) return outcome;
      const job = a.deps.store.get(a.jobId);
      const keeper = a.deps.partitions;
      if (
        !job || !keeper || !job.partitionId || !outcome.exitCode ||
        isInfrastructure(outcome.reasonCode)
      ) {
        return outcome;
      }
      const lines = (await a.log.read(Math.max(0, a.log.lastSeq - GPU_TAIL_LINES), GPU_TAIL_LINES))
        .map((l) => l.text);
      if (isMpsClientTerminated(lines)) {
        return {
          ...outcome,
          reason: `its GPU's MPS server ended it (a fatal error of another job on the GPU); ` +
            `exited with code ${outcome.exitCode}`,
          reasonCode: REASON_CODES.MPS_FAULT,
        };
      }
      const gpu = gpuOomOutcome(lines, outcome.exitCode, keeper.heldGpu(job));
      return gpu ? { ...outcome, ...gpu } : outcome;
    },
  };
}
