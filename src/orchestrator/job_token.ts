/**
 * Job tokens per attempt. A job's record holds one random secret; each attempt's
 * container gets `attemptToken(secret, attempt)` instead, so a token is valid only
 * while its attempt is the job's current one: a container of an earlier attempt
 * (a lost node that comes back, a leaked env) is refused once the next attempt
 * starts, and every token of the job once it has ended (the stop window,
 * JobManager.assertWithinStopWindow).
 * @module
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** The runtime token of `attempt` (1-based) of the job whose secret is `jobSecret`: 64 hex digits. */
export function attemptToken(jobSecret: string, attempt: number): string {
  return createHmac("sha256", jobSecret).update(`cumulus-attempt-v1\0${attempt}`).digest("hex");
}

function same(a: string, b: string): boolean {
  const enc = new TextEncoder();
  return a.length === b.length && timingSafeEqual(enc.encode(a), enc.encode(b));
}

/** What {@link checkAttemptToken} found. */
export type AttemptTokenCheck =
  | { ok: true }
  | { ok: false; earlierAttempt: number | null };

/**
 * Checks `given` against the token of the job's current attempt. An earlier attempt's
 * token is told apart (for a clear refusal). The bare secret is accepted too: containers
 * started by an orchestrator before per-attempt tokens hold it, and no newer one ever
 * hands it out.
 */
export function checkAttemptToken(
  given: string,
  jobSecret: string,
  currentAttempt: number,
): AttemptTokenCheck {
  if (same(given, attemptToken(jobSecret, currentAttempt)) || same(given, jobSecret)) {
    return { ok: true };
  }
  for (let a = currentAttempt - 1; a >= 1; a--) {
    if (same(given, attemptToken(jobSecret, a))) return { ok: false, earlierAttempt: a };
  }
  return { ok: false, earlierAttempt: null };
}
