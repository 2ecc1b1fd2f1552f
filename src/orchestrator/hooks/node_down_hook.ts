/**
 * Attempt hook: the job's node stays unreachable. Swarm marks a node `down`
 * when its heartbeats stop, but keeps its tasks' last reported state
 * ("running"), so nothing else would end the attempt before its deadline.
 * Once the node has been down longer than config `node_down_grace` (see
 * node_watch.ts), the attempt ends as lost (TASK_LOST, an infrastructure
 * failure): a job that may resume does so on another node from its last
 * checkpoint, and its service is removed.
 * @module
 */
import { REASON_CODES } from "../../core/mod.ts";
import type { AttemptHook } from "../attempt.ts";
import type { TaskOutcome } from "../attempt_end.ts";

/** The reason recorded for an attempt whose node stayed down. */
export function nodeDownReason(hostname: string, downMs: number): string {
  return `node ${hostname} unreachable for ${Math.round(downMs / 1000)} s (Swarm marks it down)`;
}

/** See the module doc. */
export function nodeDownHook(): AttemptHook {
  return {
    name: "node-down",
    tick(a) {
      const nodes = a.deps.nodes;
      // This attempt's node: the record's may still be the previous attempt's.
      const nodeId = a.nodeId;
      if (!nodes || !nodeId) return null;
      const lost = nodes.lost(nodeId);
      if (!lost) return null;
      const reason = nodeDownReason(lost.hostname, lost.downMs);
      a.deps.log(`job ${a.jobId}: attempt ${a.job.attempts} ends: ${reason}`);
      const outcome: TaskOutcome = {
        state: "FAILED",
        exitCode: null,
        reason,
        reasonCode: REASON_CODES.TASK_LOST,
      };
      return outcome;
    },
  };
}
