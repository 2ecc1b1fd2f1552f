/**
 * Test fixture (as src/core/_mock.ts): a JobRunner for one SCHEDULED job
 * (service "s1") over a real store and log in a temporary directory, with
 * the Swarm and event source the test stands in. Unit tests only: the
 * Docker side of the runner is covered by the integration tests.
 * @module
 */
import { mockJob } from "../core/_mock.ts";
import type { JobRecord } from "../core/mod.ts";
import { LogHub } from "../logs/mod.ts";
import { JobStore } from "../store/mod.ts";
import type { SwarmClient } from "../swarm/mod.ts";
import type { AttemptHook, RunnerDeps } from "./attempt.ts";
import { AttemptEnds } from "./metrics.ts";
import { JobRunner } from "./runner.ts";
import type { TaskEventSource } from "./task_events.ts";

/** A runner ready to start, and how to end the test. */
export interface RunnerFixture {
  runner: JobRunner;
  store: JobStore;
  jobId: string;
  /** What told the runner that its attempt ended. */
  ends: AttemptEnds;
  /** Waits for the runner, then closes the store and log; returns the job as recorded. */
  finish(): Promise<JobRecord>;
}

/**
 * Builds a {@link RunnerFixture} around `swarm` (only the calls the test
 * needs); `extra` replaces runner deps (a node watch).
 */
export async function runnerFixture(
  swarm: Partial<SwarmClient>,
  hooks: AttemptHook[],
  events?: TaskEventSource,
  extra: Partial<RunnerDeps> = {},
): Promise<RunnerFixture> {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-runner-" });
  const store = JobStore.open(`${dir}/jobs.db`);
  const logs = new LogHub(dir);
  const job = mockJob({ state: "QUEUED", serviceId: "", partitionId: "", deadlineMs: 0 });
  store.insert({ id: job.id, spec: job.spec, token: job.token, bundleBytes: 0, createdAt: 1 });
  // Stands in for the service hook: the attempt has a service from the start.
  store.transition(job.id, "QUEUED", "SCHEDULED", { attempts: 1, serviceId: "s1" });
  const ends = new AttemptEnds();
  const runner = new JobRunner(job.id, {
    store,
    logs,
    swarm: swarm as SwarmClient,
    orchestratorAddress: "127.0.0.1:1",
    instanceId: "i",
    stopGracePeriodS: 1,
    pollIntervalMs: 10,
    events,
    ends,
    now: Date.now,
    onChange: () => {},
    log: () => {},
    ...extra,
  }, hooks);
  return {
    runner,
    store,
    jobId: job.id,
    ends,
    async finish() {
      await runner.done;
      const end = store.mustGet(job.id);
      await logs.closeAll();
      store.close();
      await Deno.remove(dir, { recursive: true });
      return end;
    },
  };
}
