/**
 * The checkpoint volume sweep as a pure function: this instance's labelled
 * volumes and a read-only view of the job records go in; the names of the
 * volumes to remove come out. The job manager lists the volumes, plans, then
 * removes (a volume still in use stays for the next sweep). Table-driven
 * tests: volume_sweep_plan_test.ts.
 * @module
 */
import { isTerminal, type JobRecord } from "../core/mod.ts";
import { checkpointVolume, JOB_LABEL } from "./service_spec.ts";

/** A volume as the sweep sees it: its name and the job its label names. */
export interface JobVolume {
  name: string;
  /** Value of the volume's job label ("" when it has none). */
  jobId: string;
}

/** Reads one job record (the store's `get`, or a map in tests); null when unknown. */
export type JobLookup = (id: string) => Pick<JobRecord, "state"> | null;

/** Parses listed volumes into {@link JobVolume}s. */
export function jobVolumesOf(
  volumes: ReadonlyArray<{ name: string; labels: Record<string, string> }>,
): JobVolume[] {
  return volumes.map((v) => ({ name: v.name, jobId: v.labels[JOB_LABEL] ?? "" }));
}

/**
 * The volumes to remove: those of ended or unknown jobs, and those without a
 * job label. A volume of a job that has not ended stays, and so does one
 * whose name is not its job's checkpoint volume (not ours to remove).
 * @example
 * planVolumeSweep([{ name: "cumulus-ckpt-j-1", jobId: "j-1" }], () => null);
 * // → ["cumulus-ckpt-j-1"]
 */
export function planVolumeSweep(volumes: readonly JobVolume[], jobOf: JobLookup): string[] {
  const remove: string[] = [];
  for (const v of volumes) {
    const job = v.jobId ? jobOf(v.jobId) : null;
    if (job && !isTerminal(job.state)) continue;
    if (v.jobId && v.name !== checkpointVolume(v.jobId)) continue;
    remove.push(v.name);
  }
  return remove;
}
