/**
 * Attempt hook: the jobs' network as a cause of rejection. A node whose
 * Docker engine restarted keeps a stale copy of a Swarm-scoped network and
 * rejects every task on it ("network <id> exists", moby/moby#37087). When
 * that network is the jobs' own, the hook has it made again (a new
 * generation, job_network.ts) and calls the outcome NETWORK_STALE: the same
 * attempt starts again on the new network, since its process never ran.
 * @module
 */
import { REASON_CODES } from "../../core/mod.ts";
import type { AttemptHook } from "../attempt.ts";
import { staleNetworkId } from "../job_network.ts";

/** See the module doc. */
export function networkHook(): AttemptHook {
  return {
    name: "network",
    async explain(a, outcome) {
      const network = a.deps.network;
      if (!network || outcome.reasonCode !== REASON_CODES.REJECTED) return outcome;
      const id = staleNetworkId(outcome.taskErr ?? "");
      if (!id) return outcome;
      let renewed = false;
      try {
        renewed = await network.renew(id);
      } catch (err) {
        a.deps.log(
          `job ${a.jobId}: making the jobs' network again failed: ${(err as Error).message}`,
        );
      }
      if (!renewed) return outcome;
      return {
        ...outcome,
        reason: "was refused by Swarm: its node kept a stale copy of the jobs' network after " +
          `its Docker engine restarted (moby/moby#37087); made ${network.name}`,
        reasonCode: REASON_CODES.NETWORK_STALE,
      };
    },
  };
}
