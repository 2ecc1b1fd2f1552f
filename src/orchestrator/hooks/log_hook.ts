/**
 * Attempt hook: the job's Docker log. Follows the service's log into the job
 * log from the start; when the task ended, keeps following until Docker's
 * final line is stored (the log pipeline may lag a job that printed fast),
 * and drains what the follow did not deliver (not from a node Swarm marks
 * down: Docker would wait for it without end). Lines the job's runtime
 * streams over gRPC arrive through `Runtime.StreamLogs` instead.
 * @module
 */
import { pause } from "../../core/mod.ts";
import type { JobLog, LastLine } from "../../logs/mod.ts";
import type { DockerFrame } from "../../swarm/mod.ts";
import { Aligner } from "../align.ts";
import type { Attempt, AttemptHook } from "../attempt.ts";

/** How long the log follow may deliver nothing before the hook drains instead. */
const CATCH_UP_STALL_MS = 5000;

/** See the module doc. */
export function logHook(): AttemptHook {
  const followAbort = new AbortController();
  let follow: Promise<void> = Promise.resolve();
  /** The follow stored Docker's final line of this attempt: no drain needed. */
  let caughtUp = false;
  return {
    name: "logs",
    started(a) {
      follow = followLog(a, followAbort.signal);
    },
    async ended(a, outcome) {
      // A node Swarm marks down cannot send its log: Docker's service log read
      // waits for it without end. What the follow stored is all there is.
      const lost = a.nodeId ? a.deps.nodes?.lost(a.nodeId) : null;
      if (outcome && !a.expiredByUs && !a.signal.aborted && !lost) caughtUp = await catchUp(a);
      followAbort.abort();
      await follow;
      if (lost) {
        a.deps.log(`job ${a.jobId}: node ${lost.hostname} is down; its last lines are not read`);
        return;
      }
      if (a.detached || !a.serviceId || caughtUp) return;
      await drain(a, a.cancelled || outcome?.state === "EXPIRED" ? 500 : 60_000);
    },
  };
}

/** The stored line to re-find in this attempt's Docker log, or null to take every line. */
function alignBase(a: Attempt): LastLine | null {
  // Only Docker's own lines can be re-found in Docker's log; lines the
  // runtime streamed, and lines of an earlier attempt, cannot.
  const last = a.log.lastDocker;
  if (!last || last.seq < a.log.lastMarkerSeq) return null;
  if (a.attemptStartSeq >= 0 && last.seq <= a.attemptStartSeq) return null;
  return last;
}

function append(a: Attempt, frames: DockerFrame[]): void {
  if (frames.length > 0 && a.firstLineMs === null) a.firstLineMs = frames[0].timeMs;
  for (const f of frames) {
    a.log.append({
      stream: f.stream,
      origin: { kind: "docker", ts: f.ts },
      timeMs: f.timeMs,
      text: f.text,
    });
  }
}

async function lastTimeMs(log: JobLog): Promise<number> {
  const lines = await log.read(log.lastSeq - 1, 1);
  return lines[0]?.timeMs ?? 0;
}

async function followLog(a: Attempt, signal: AbortSignal): Promise<void> {
  const last = alignBase(a);
  const lastMs = last ? await lastTimeMs(a.log) : 0;
  const aligner = new Aligner(last, lastMs);
  // Re-read a little before the stored tail so it can be found again.
  const sinceSec = lastMs > 0 ? Math.max(1, Math.floor(lastMs / 1000) - 1) : undefined;
  try {
    for await (const frames of a.deps.swarm.followLogs(a.serviceId, { sinceSec, signal })) {
      append(a, aligner.feed(frames));
    }
  } catch (err) {
    a.deps.log(`job ${a.jobId}: log follow ended: ${(err as Error).message}`);
  }
}

/**
 * Reads Docker's final line of the attempt and waits until the follow stored
 * it; true when it did (every line before it is stored too), false when the
 * follow stalled or the line could not be read.
 */
async function catchUp(a: Attempt): Promise<boolean> {
  const d = a.deps;
  let final: DockerFrame | undefined;
  try {
    // An end seen from the local engine's die event comes before Swarm has
    // relayed the last lines to the service log: the container's own log has them.
    const read = a.endedLocally
      ? d.swarm.readContainerLogs(a.endedLocally, 1)
      : d.swarm.readLogs(a.serviceId, 1);
    // Bounded: an engine that is going down may accept the call and never answer.
    const timer = new AbortController();
    const got = await Promise.race([
      read,
      pause(CATCH_UP_STALL_MS, timer.signal).then(() => null),
    ]).finally(() => timer.abort());
    if (got === null) throw new Error(`no answer within ${CATCH_UP_STALL_MS} ms`);
    final = got[0];
  } catch (err) {
    d.log(`job ${a.jobId}: could not read the final log line: ${(err as Error).message}`);
    return false;
  }
  // The container's own log is complete when it died: empty, there is nothing to drain.
  if (!final) return a.endedLocally !== "";
  const isFinal = () => {
    const last = a.log.lastDocker;
    return last !== null && last.origin.kind === "docker" && last.origin.ts === final.ts &&
      last.stream === final.stream &&
      last.text === final.text;
  };
  // Dropped lines (past the log cap) are progress too.
  const progress = () => a.log.lastSeq + a.log.dropped;
  while (!isFinal() && !a.signal.aborted) {
    const before = progress();
    const stall = new AbortController();
    const timer = setTimeout(() => stall.abort(), CATCH_UP_STALL_MS);
    await a.log.waitForMore(before, AbortSignal.any([stall.signal, a.signal]));
    clearTimeout(timer);
    if (progress() === before) {
      d.log(`job ${a.jobId}: log follow stalled; draining the rest`);
      return false;
    }
  }
  return isFinal();
}

/** Reads what the follow stream had not delivered yet, from the log's tail. */
async function drain(a: Attempt, budgetMs: number): Promise<void> {
  const d = a.deps;
  const deadline = d.now() + budgetMs;
  let tail = 1000;
  for (;;) {
    let frames: DockerFrame[];
    try {
      frames = await d.swarm.readLogs(a.serviceId, alignBase(a) ? tail : undefined);
    } catch (err) {
      d.log(`job ${a.jobId}: log drain failed: ${(err as Error).message}`);
      return;
    }
    const aligner = new Aligner(alignBase(a), 0);
    const fresh = aligner.feed(frames);
    if (aligner.matched) {
      append(a, fresh);
      return;
    }
    if (frames.length < tail || d.now() > deadline) {
      // The stored tail is not in Docker's log: appending could duplicate.
      d.log(`job ${a.jobId}: drain could not align; kept stored log`);
      return;
    }
    tail *= 8;
  }
}
