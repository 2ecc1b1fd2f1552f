/**
 * How one attempt of a job ends, as a pure function of what happened: the
 * task's outcome (already explained: GPU out of memory, MPS fault), whether
 * the user cancelled, whether the orchestrator's expiry backstop stopped it
 * (and recorded RESUMING), whether the orchestrator is shutting down, and the
 * job as stored. The runner gathers those facts, calls {@link decideAttemptEnd}
 * and applies the answer; every branch is a row of attempt_end_test.ts.
 * @module
 */
import {
  isInfrastructure,
  type JobRecord,
  type JobState,
  REASON_CODES,
  type ReasonCode,
} from "../core/mod.ts";
import { expiryDecision } from "./expiry.ts";

/** Outcome derived from a terminal Swarm task. */
export interface TaskOutcome {
  state: JobState;
  exitCode: number | null;
  /** For people. */
  reason: string;
  /**
   * For programs, and what decides: a code {@link isInfrastructure} calls an
   * infrastructure failure (the job did not end by itself) resumes a job
   * that may resume and has attempts left. "" for a success.
   */
  reasonCode: ReasonCode;
  /** Swarm's own error for a rejected task, for hooks that recognise one (never shown). */
  taskErr?: string;
}

/** What the runner knows when an attempt is over. */
export interface AttemptFacts {
  /** How the task ended; null when it was never seen ending (cancelled, detached). */
  outcome: TaskOutcome | null;
  /** The user cancelled the job (CANCELLED is recorded already). */
  cancelled: boolean;
  /** The orchestrator is shutting down and leaves the job running. */
  detached: boolean;
  /** The orchestrator's expiry backstop stopped the job (and recorded its state). */
  expiredByUs: boolean;
  /** That backstop recorded RESUMING: the next attempt continues the log. */
  expiryResumed: boolean;
  /** The job as stored now; null when it is gone. */
  job: JobRecord | null;
}

/** The final state of a job, as the runner writes it. */
export interface FinalState {
  state: JobState;
  exitCode: number | null;
  reason: string;
  reasonCode: ReasonCode;
}

/**
 * What to do:
 * - `detach`: nothing is recorded and the log stays open (the next orchestrator re-attaches);
 * - `resume`: record RESUMING with `reason` (the scheduler places the next attempt), close the log;
 *   with `refund`, the attempt never ran its process and does not count against `maxAttempts`;
 * - `continue`: RESUMING is recorded already, close the log;
 * - `final`: complete the log, then record `final`;
 * - `leave`: complete the log; the state someone else recorded (CANCELLED, EXPIRED) stands.
 */
export type AttemptEnd =
  | { kind: "detach" }
  | { kind: "resume"; reason: string; reasonCode: ReasonCode; refund?: boolean }
  | { kind: "continue" }
  | { kind: "final"; final: FinalState }
  | { kind: "leave" };

/**
 * The reason recorded while the job ran that decides how it ends (the Runtime
 * service refused its result), or "" when there is none. Read from the code,
 * never from the text.
 */
export function runningNote(job: JobRecord | null): string {
  return job?.reasonCode === REASON_CODES.RESULT_REFUSED ? job.reason : "";
}

/**
 * The final state for `outcome`. A note recorded while the job ran (see
 * {@link runningNote}) is the real cause: it fails the job and leads the reason.
 */
export function finalState(outcome: TaskOutcome, note: string): FinalState {
  if (note) {
    return {
      state: "FAILED",
      exitCode: outcome.exitCode,
      reason: `${note} (${outcome.reason || "exited with code 0"})`,
      reasonCode: REASON_CODES.RESULT_REFUSED,
    };
  }
  return {
    state: outcome.state,
    exitCode: outcome.exitCode,
    reason: outcome.reason,
    reasonCode: outcome.reasonCode,
  };
}

/**
 * Decides how an attempt ends (see {@link AttemptEnd}). An infrastructure
 * failure of a job that may resume and has attempts left resumes; a job its
 * node's agent stopped at the deadline resumes or expires by
 * {@link expiryDecision}; anything else gets its final state, unless a cancel
 * or the orchestrator's own expiry recorded one first.
 * @example
 * decideAttemptEnd({ outcome: { state: "SUCCEEDED", exitCode: 0, reason: "", reasonCode: "" },
 *   cancelled: false,
 *   detached: false, expiredByUs: false, expiryResumed: false, job }); // { kind: "final", … }
 */
export function decideAttemptEnd(f: AttemptFacts): AttemptEnd {
  if (f.detached && !f.cancelled) return { kind: "detach" };
  const { outcome, job } = f;
  const free = !f.cancelled && !f.expiredByUs;
  if (outcome?.reasonCode === REASON_CODES.NETWORK_STALE && !f.cancelled && job) {
    // The task was refused before its process ran: that attempt does not count.
    return {
      kind: "resume",
      reason: `attempt ${job.attempts} ${outcome.reason}; starting it again`,
      reasonCode: outcome.reasonCode,
      refund: true,
    };
  }
  if (
    outcome && isInfrastructure(outcome.reasonCode) && !f.cancelled && job && job.spec.resume &&
    job.attempts < job.spec.maxAttempts
  ) {
    return {
      kind: "resume",
      reason: `attempt ${job.attempts} ${outcome.reason}; resuming`,
      reasonCode: outcome.reasonCode,
    };
  }
  if (f.expiryResumed) return { kind: "continue" };
  if (outcome?.state === "EXPIRED" && free) {
    // Stopped by the node's agent daemon at the deadline. A reason noted while
    // the job ran (a refused result) fails it instead.
    const note = runningNote(job);
    const decision = job && !note ? expiryDecision(job) : { resume: false, note: "" };
    if (job && decision.resume) {
      return {
        kind: "resume",
        reason: `attempt ${job.attempts}: ${outcome.reason}; ${decision.note}`,
        reasonCode: REASON_CODES.EXPIRED,
      };
    }
    const reason = decision.note ? `${outcome.reason}; ${decision.note}` : outcome.reason;
    return { kind: "final", final: finalState({ ...outcome, reason }, note) };
  }
  if (outcome && free) return { kind: "final", final: finalState(outcome, runningNote(job)) };
  return { kind: "leave" };
}
