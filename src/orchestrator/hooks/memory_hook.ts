/**
 * Attempt hook: the container's memory limit as a cause of failure. A job
 * whose process the kernel's OOM killer ended (SIGKILL, exit 137) looks like
 * a container killed from outside, which resumes; it ran past its own
 * `spec.memory` instead, would do so again, and fails with a reason that names
 * the limit. Docker records the OOM kill on the container (`State.OOMKilled`),
 * which only the engine that ran it can tell: on other nodes the job keeps
 * the plain outcome.
 * @module
 */
import { formatBytes, REASON_CODES } from "../../core/mod.ts";
import type { AttemptHook } from "../attempt.ts";
import { DEFAULT_JOB_ISOLATION } from "../service_spec.ts";

/** See the module doc. */
export function memoryHook(): AttemptHook {
  return {
    name: "memory",
    async explain(a, outcome) {
      const containerId = a.endedLocally || a.containerId;
      if (outcome.state !== "FAILED" || a.cancelled || !containerId) return outcome;
      let oom: boolean | null = null;
      try {
        oom = await a.deps.swarm.containerOomKilled(containerId);
      } catch (err) {
        a.deps.log(`job ${a.jobId}: container inspect failed: ${(err as Error).message}`);
      }
      if (!oom) return outcome;
      const limit = a.job.spec.memoryBytes ??
        (a.deps.isolation ?? DEFAULT_JOB_ISOLATION).memoryDefault;
      const code = outcome.exitCode === null ? "" : `; exited with code ${outcome.exitCode}`;
      return {
        ...outcome,
        reason: `killed by the out-of-memory killer: exceeded its memory limit of ${
          formatBytes(limit)
        } (spec.memory)${code}`,
        reasonCode: REASON_CODES.MEMORY_EXCEEDED,
      };
    },
  };
}
