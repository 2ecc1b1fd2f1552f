/**
 * Startup reconcile as a pure function: the active job records and this
 * instance's job services go in; a plan comes out (which runners attach to a
 * service that survived, which SCHEDULED jobs get a new one, which jobs
 * failed while the orchestrator was down, which stored service ids are
 * stale, which services go). No store, Docker or log I/O happens here: the
 * job manager reads the inputs, then applies the plan (store writes, then
 * runners, then removals). Table-driven tests: reconcile_plan_test.ts.
 * @module
 */
import { type JobRecord, REASON_CODES, type ReasonCode } from "../core/mod.ts";
import type { ServiceInfo } from "../swarm/mod.ts";
import { INSTANCE_LABEL, JOB_LABEL } from "./service_spec.ts";

/** A job service as reconcile sees it: its Swarm id and the job its label names. */
export interface JobService {
  /** Swarm service id. */
  id: string;
  /** Value of the service's job label ("" when empty). */
  jobId: string;
}

/** What reconcile knows when it starts. */
export interface ReconcileInput {
  /** Jobs stored as SCHEDULED, RUNNING or RESUMING, in store order (others are ignored). */
  activeJobs: readonly JobRecord[];
  /** Job services of this orchestrator instance (others' are never in the input). */
  services: readonly JobService[];
}

/** Why a service is removed. */
export const REMOVE_WHY = {
  /** Its job is RESUMING: the previous attempt's service outlived a crash. */
  STALE_ATTEMPT: "STALE_ATTEMPT",
  /** No active job owns it (the job ended, is unknown, or has another service). */
  ORPHAN: "ORPHAN",
} as const;

/** One of {@link REMOVE_WHY}. */
export type RemoveWhy = typeof REMOVE_WHY[keyof typeof REMOVE_WHY];

/** The reason recorded on a running job whose service is gone after a restart. */
export const SERVICE_VANISHED_REASON = "service vanished while the orchestrator was down";

/** The decisions of one reconcile, each list in input order. */
export interface ReconcilePlan {
  /** Stored service ids to correct before runners start ("" = the runner creates one). */
  fixServiceIds: Array<{ jobId: string; serviceId: string }>;
  /** Jobs whose service exists: a runner attaches to it. */
  attach: Array<{ jobId: string; serviceId: string }>;
  /** SCHEDULED jobs with no service: a runner starts one from `image`. */
  recreate: Array<{ jobId: string; image: string }>;
  /** Jobs to record FAILED (from any active state). */
  fail: Array<{ jobId: string; reason: string; reasonCode: ReasonCode }>;
  /** Services to remove once the runners run. */
  removeServices: Array<{ serviceId: string; jobId: string; why: RemoveWhy }>;
}

/** Parses listed services into {@link JobService}s, keeping only those `instanceId` owns. */
export function jobServicesOf(
  services: readonly ServiceInfo[],
  instanceId: string,
): JobService[] {
  return services
    .filter((s) => s.labels[INSTANCE_LABEL] === instanceId)
    .map((s) => ({ id: s.id, jobId: s.labels[JOB_LABEL] ?? "" }));
}

/**
 * Plans a startup reconcile. Per active job: RESUMING with a leftover
 * service → remove the service (the scheduler starts the next attempt);
 * a service exists → attach to it (correcting the stored id); SCHEDULED with
 * none → start one; RESUMING with none → left to the scheduler; RUNNING with
 * none → FAILED. Every service no runner attaches to is removed.
 * @example
 * planReconcile({ activeJobs: [job], services: [{ id: "s1", jobId: job.id }] });
 * // → attach [{ jobId: job.id, serviceId: "s1" }], nothing else
 */
export function planReconcile(input: ReconcileInput): ReconcilePlan {
  const plan: ReconcilePlan = {
    fixServiceIds: [],
    attach: [],
    recreate: [],
    fail: [],
    removeServices: [],
  };
  // With several services naming one job, the last listed is the job's.
  const byJob = new Map(input.services.map((s) => [s.jobId, s]));
  const kept = new Set<string>();
  const resuming = new Set<string>();
  for (const job of input.activeJobs) {
    const svc = byJob.get(job.id);
    switch (job.state) {
      case "RESUMING":
        // Any service it has is the previous attempt's; the scheduler starts the next.
        resuming.add(job.id);
        break;
      case "SCHEDULED":
      case "RUNNING":
        if (svc) {
          if (job.serviceId !== svc.id) {
            plan.fixServiceIds.push({ jobId: job.id, serviceId: svc.id });
          }
          plan.attach.push({ jobId: job.id, serviceId: svc.id });
          kept.add(svc.id);
        } else if (job.state === "SCHEDULED") {
          // Its runner had not created the service yet: a new runner does.
          if (job.serviceId !== "") plan.fixServiceIds.push({ jobId: job.id, serviceId: "" });
          plan.recreate.push({ jobId: job.id, image: job.spec.image });
        } else {
          plan.fail.push({
            jobId: job.id,
            reason: SERVICE_VANISHED_REASON,
            reasonCode: REASON_CODES.SERVICE_VANISHED,
          });
        }
        break;
      case "QUEUED":
      case "SUCCEEDED":
      case "FAILED":
      case "CANCELLED":
      case "EXPIRED":
        // Not active: a service of it is an orphan.
        break;
      default: {
        const never: never = job.state;
        throw new TypeError(`job.state: unknown, got ${never}`);
      }
    }
  }
  for (const svc of input.services) {
    if (kept.has(svc.id)) continue;
    const why = resuming.has(svc.jobId) ? REMOVE_WHY.STALE_ATTEMPT : REMOVE_WHY.ORPHAN;
    plan.removeServices.push({ serviceId: svc.id, jobId: svc.jobId, why });
  }
  return plan;
}
