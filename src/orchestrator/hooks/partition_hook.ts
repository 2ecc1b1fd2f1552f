/**
 * Attempt hook: the job's Chronos partition. Taken before the service is
 * created (a job placed on a node waits there for its share); released once
 * the attempt is over and the job ended or resumes elsewhere (except on a
 * node that is down: the partition sweep releases it when the node is back).
 * @module
 */
import { isTerminal, pause } from "../../core/mod.ts";
import type { AttemptHook } from "../attempt.ts";
import { PartitionWaitError, PENDING_PARTITION } from "../partitions.ts";

/** See the module doc. */
export function partitionHook(): AttemptHook {
  return {
    name: "partition",
    async prepare(a) {
      const d = a.deps;
      if (a.serviceId || a.job.partitionId !== PENDING_PARTITION) return "next";
      try {
        if (!d.partitions) throw new PartitionWaitError("waiting: GPU placement is off");
        a.job = await d.partitions.acquire(a.job);
        return "next";
      } catch (err) {
        if (a.signal.aborted) return "end";
        const why = err instanceof PartitionWaitError ? err.message : String(err);
        // Back to the queue with the reason; the attempt was not used.
        const back = a.job.attempts > 1 ? "RESUMING" : "QUEUED";
        d.log(`job ${a.jobId}: no partition (${why}); back to ${back}`);
        a.transition(["SCHEDULED"], back, {
          reason: why,
          attempts: a.job.attempts - 1,
          partitionId: "",
          deadlineMs: 0,
        });
        a.log.close();
        await pause(1000, a.signal);
        return "stop";
      }
    },
    async cleanup(a) {
      // However the attempt ended (success, failure, cancel, expiry, lost), its
      // partition goes before the next job is placed; a requeued job has none.
      const job = a.deps.store.get(a.jobId);
      if (job && a.deps.partitions && (isTerminal(job.state) || job.state === "RESUMING")) {
        // A node Swarm marks down past the grace period cannot answer: asking would hold
        // the next attempt for the SSH timeout. The partition sweep releases it once the
        // node's agent answers again (Chronos also expires it at its deadline).
        const lost = job.nodeId ? a.deps.nodes?.lost(job.nodeId) : null;
        if (lost) {
          a.deps.log(
            `job ${a.jobId}: node ${lost.hostname} is down; its partition is left to the sweep`,
          );
          return;
        }
        await a.deps.partitions.release(job);
      }
    },
  };
}
