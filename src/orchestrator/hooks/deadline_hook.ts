/**
 * Attempt hook: the job's deadline. The node's agent daemon stops a job at
 * its deadline; a failure seen then is the expiry. If the daemon did not
 * stop it within the grace period, this hook does (the backstop): the expiry
 * (EXPIRED, or RESUMING for a checkpointed job that asked to) is recorded
 * before the service is stopped.
 * @module
 */
import { REASON_CODES } from "../../core/mod.ts";
import type { AttemptHook } from "../attempt.ts";
import { decideAttemptEnd, type TaskOutcome } from "../attempt_end.ts";

/** See the module doc. */
export function deadlineHook(): AttemptHook {
  return {
    name: "deadline",
    tick(a) {
      const d = a.deps;
      const job = a.job;
      if (!(job.deadlineMs > 0 && d.now() > job.deadlineMs + d.stopGracePeriodS * 1000 + 1000)) {
        return null;
      }
      const outcome: TaskOutcome = {
        state: "EXPIRED",
        exitCode: null,
        reason: `duration of ${job.spec.duration} s is over: stopped by the orchestrator ` +
          `(the node's agent daemon had not stopped it within the grace period)`,
        reasonCode: REASON_CODES.EXPIRED,
      };
      const end = decideAttemptEnd(a.facts(outcome));
      if (end.kind === "resume") a.expiryResumed = a.resume(end.reason, end.reasonCode);
      else if (end.kind === "final") a.setFinal(end.final);
      a.expiredByUs = true;
      return outcome;
    },
    judge(a, outcome) {
      const job = a.job;
      if (
        job.deadlineMs > 0 && outcome.state === "FAILED" && a.deps.now() >= job.deadlineMs - 1000
      ) {
        return {
          state: "EXPIRED",
          exitCode: outcome.exitCode,
          reason: `duration of ${job.spec.duration} s is over: stopped at its deadline by ` +
            `the node's agent daemon (${outcome.reason})`,
          reasonCode: REASON_CODES.EXPIRED,
        };
      }
      return outcome;
    },
  };
}
