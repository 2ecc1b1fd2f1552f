/**
 * The test stack a benchmark runs on, on the jobs' network it asks for:
 * `BENCH_JOB_NETWORK` names one (e.g. `cumulus-jobs`, the product's default:
 * jobs then dial the bridge gateway, as under `cumulus up`); unset, the test
 * stack's host networking. Raw baselines join the same network.
 * @module
 */
import { type Stack, startStack } from "../tests/helpers/stack.ts";

/** Config `job_network` the benchmark asked for ("" = the test stack's host networking). */
export const BENCH_JOB_NETWORK = Deno.env.get("BENCH_JOB_NETWORK") ?? "";

/**
 * Starts the stack (5 concurrent jobs) and resolves with it and the network
 * its jobs join now (a generation made after an engine restart may have
 * replaced the configured name), which raw services must join too.
 */
export async function startBenchStack(): Promise<{ stack: Stack; network: string }> {
  const stack = await startStack({
    maxConcurrentJobs: 5,
    env: BENCH_JOB_NETWORK
      ? { CUMULUS_JOB_NETWORK: BENCH_JOB_NETWORK, CUMULUS_ADVERTISE_ADDRESS: "" }
      : undefined,
  });
  return { stack, network: stack.orch.jobNetwork() };
}
