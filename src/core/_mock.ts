/**
 * Shared test fixtures (as Nomad's `mock` package): one builder of a valid
 * job record, so unit tests state only what they are about.
 * @module
 */
import type { JobRecord, JobSpec } from "./job.ts";

/** A RUNNING one-attempt job with a 0.5 partition on node "n1"; override any field. */
export function mockJob(
  over: Partial<Omit<JobRecord, "spec">> & { spec?: Partial<JobSpec> } = {},
): JobRecord {
  const { spec, ...rest } = over;
  return {
    id: "j-0123456789ab",
    seq: 1,
    spec: {
      image: "cumulus-job:latest",
      command: ["python3", "train.py"],
      function: new Uint8Array(),
      env: {},
      gpuMemory: 0.5,
      duration: 600,
      gpuCount: 1,
      constraints: [],
      resume: false,
      maxAttempts: 1,
      s3Prefix: "",
      user: "ada",
      name: "",
      workdir: "",
      ...spec,
    },
    state: "RUNNING",
    exitCode: null,
    reason: "",
    createdAt: 1_000,
    startedAt: 2_000,
    finishedAt: null,
    attempts: 1,
    nodeId: "n1",
    serviceId: "s1",
    logSeq: 0,
    token: "secret-token",
    bundleBytes: 0,
    hasResult: false,
    partitionId: "p-000000000001",
    gpuDevice: 0,
    deadlineMs: 600_000,
    lastCheckpoint: null,
    ...rest,
  };
}

/**
 * A job service as the orchestrator's planners see it (Swarm id and the job
 * its label names): id `svc-<job id>` unless given.
 */
export function mockService(jobId: string, id = `svc-${jobId}`): { id: string; jobId: string } {
  return { id, jobId };
}

/**
 * A labelled volume as the volume sweep sees it: by default the job's L1
 * checkpoint volume, `cumulus-ckpt-<job id>`.
 */
export function mockVolume(
  jobId: string,
  name = `cumulus-ckpt-${jobId}`,
): { name: string; jobId: string } {
  return { name, jobId };
}

/** A read-only view of `jobs` by id, as planners take the store's `get`. */
export function mockLookup(...jobs: JobRecord[]): (id: string) => JobRecord | null {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  return (id) => byId.get(id) ?? null;
}
