/**
 * Pure queue policy: which queued jobs start now. FIFO, with fair share
 * between users: when slots are scarce, the user holding the fewest running
 * jobs goes first; ties keep submission order.
 * @module
 */

/** A queued job as the policy sees it. */
export interface QueuedJob {
  id: string;
  user: string;
  /** Submission order (lower = earlier). */
  seq: number;
}

/**
 * Picks the jobs to start, in start order.
 * @param queued jobs waiting, any order
 * @param runningByUser jobs each user has active now
 * @param freeSlots how many may start
 * @example
 * pickJobs([{ id: "a", user: "u", seq: 1 }], new Map(), 1); // ["a"]
 */
export function pickJobs(
  queued: readonly QueuedJob[],
  runningByUser: ReadonlyMap<string, number>,
  freeSlots: number,
): string[] {
  if (freeSlots <= 0 || queued.length === 0) return [];
  const byUser = new Map<string, QueuedJob[]>();
  for (const j of [...queued].sort((a, b) => a.seq - b.seq)) {
    const list = byUser.get(j.user) ?? [];
    list.push(j);
    byUser.set(j.user, list);
  }
  const active = new Map(runningByUser);
  const out: string[] = [];
  while (out.length < freeSlots && byUser.size > 0) {
    let best: QueuedJob | null = null;
    let bestActive = Infinity;
    for (const [user, list] of byUser) {
      const n = active.get(user) ?? 0;
      const head = list[0];
      if (n < bestActive || (n === bestActive && best !== null && head.seq < best.seq)) {
        best = head;
        bestActive = n;
      }
    }
    if (!best) break;
    out.push(best.id);
    active.set(best.user, bestActive + 1);
    const list = byUser.get(best.user)!;
    list.shift();
    if (list.length === 0) byUser.delete(best.user);
  }
  return out;
}
