/**
 * What happens to a job whose partition expired: it ends EXPIRED, or, when it
 * asked for it (`retry.resume_on_expiry`), reported a checkpoint and has
 * attempts left, it goes RESUMING and is placed again with a fresh partition
 * of the same duration. Bounded by `max_attempts`: a job with a duration
 * limit never runs forever.
 * @module
 */
import type { JobRecord } from "../core/mod.ts";

/** The outcome {@link expiryDecision} chose, with the words added to the reason. */
export interface ExpiryDecision {
  /** True: record RESUMING (the scheduler starts the next attempt). */
  resume: boolean;
  /**
   * Appended to the expiry reason: why it resumes or, for a job that asked to
   * be resumed, why it does not; "" for a job that did not ask.
   */
  note: string;
}

/** Decides between EXPIRED and RESUMING for `job` (as stored) at its deadline. */
export function expiryDecision(job: JobRecord): ExpiryDecision {
  if (!job.spec.resumeOnExpiry) return { resume: false, note: "" };
  const ckpt = job.lastCheckpoint;
  if (!ckpt) {
    return { resume: false, note: "not resumed: the job reported no checkpoint" };
  }
  if (job.attempts >= job.spec.maxAttempts) {
    return {
      resume: false,
      note: `not resumed: attempt ${job.attempts} of ${job.spec.maxAttempts} was the last`,
    };
  }
  return {
    resume: true,
    note: `resuming from the checkpoint of step ${ckpt.step} (${ckpt.tier})`,
  };
}
