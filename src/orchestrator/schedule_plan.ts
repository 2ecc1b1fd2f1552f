/**
 * One scheduling round as a pure function: the jobs waiting, the slots free,
 * the workers' free GPU shares and the images that exist go in; a plan comes
 * out (which jobs become SCHEDULED where, which FAILED, which only get a new
 * waiting reason). No store, Docker or agent I/O happens here: the job
 * manager gathers the inputs, then applies the plan with compare-and-set
 * transitions. Table-driven tests: schedule_plan_test.ts.
 * @module
 */
import { type JobRecord, type JobState, REASON_CODES } from "../core/mod.ts";
import { type NodeCapacity, pickJobs, place, waitingReason } from "../scheduler/mod.ts";
import type { JobPatch } from "../store/mod.ts";
import { demandOf, PENDING_PARTITION } from "./partitions.ts";

/** What a round knows when it starts. */
export interface ScheduleInput {
  /** Slots free under `max_concurrent_jobs`. */
  freeSlots: number;
  /** RESUMING jobs with no runner: they were running, so they go first. */
  resuming: readonly JobRecord[];
  /** QUEUED jobs, any order (fair share orders them). */
  queued: readonly JobRecord[];
  /** Jobs each user has running now (fair share). */
  runningByUser: ReadonlyMap<string, number>;
  /** Free shares per device from the agents, or null for plain Swarm placement (no GPUs). */
  capacities: readonly NodeCapacity[] | null;
  /** Image reference → image id on the manager, or null where it does not exist. */
  images: ReadonlyMap<string, string | null>;
}

/** A transition the round wants, to be applied with compare-and-set from `from`. */
export interface PlannedTransition {
  id: string;
  from: JobState;
  to: "SCHEDULED" | "FAILED";
  patch: JobPatch;
  /** For SCHEDULED: the image id the runner starts. */
  imageId?: string;
}

/** The outcome of one round. */
export interface SchedulePlan {
  /** In start order. */
  transitions: PlannedTransition[];
  /** Jobs that stay QUEUED with a new waiting reason. */
  reasons: Array<{ id: string; reason: string }>;
}

/** The error text of a job whose image does not exist on the manager. */
export function missingImageReason(image: string): string {
  return `image "${image}" not found on the Swarm manager`;
}

/**
 * The images a round may look up: every distinct image of the waiting jobs
 * (one lookup each, however many jobs share it).
 */
export function imagesToResolve(input: Pick<ScheduleInput, "resuming" | "queued">): string[] {
  return [...new Set([...input.resuming, ...input.queued].map((j) => j.spec.image))];
}

/**
 * Plans one round: resuming jobs first, then queued jobs in fair-share order,
 * each placed on the free GPU shares (which the plan uses up as it goes) until
 * the slots are gone. A job whose image is missing is FAILED; one that does
 * not fit now keeps waiting with a reason that says why.
 * @example
 * planSchedule({ freeSlots: 1, resuming: [], queued: [job], runningByUser: new Map(),
 *   capacities: null, images: new Map([[job.spec.image, "sha256:…"]]) });
 */
export function planSchedule(input: ScheduleInput): SchedulePlan {
  const plan: SchedulePlan = { transitions: [], reasons: [] };
  let free = input.freeSlots;
  if (free <= 0) return plan;
  const byId = new Map([...input.resuming, ...input.queued].map((j) => [j.id, j]));
  const order = [
    ...input.resuming.map((j) => j.id),
    ...pickJobs(
      input.queued.map((j) => ({ id: j.id, user: j.spec.user, seq: j.seq })),
      input.runningByUser,
      input.queued.length,
    ),
  ];
  // The plan spends shares as it places jobs: work on a copy.
  const caps = input.capacities === null
    ? null
    : structuredClone(input.capacities) as NodeCapacity[];
  for (const id of order) {
    if (free <= 0) break;
    const job = byId.get(id)!;
    const from = job.state;
    const imageId = input.images.get(job.spec.image) ?? null;
    if (imageId === null) {
      plan.transitions.push({
        id,
        from,
        to: "FAILED",
        patch: {
          reason: missingImageReason(job.spec.image),
          reasonCode: REASON_CODES.START_FAILED,
        },
      });
      continue;
    }
    const patch: JobPatch = {
      attempts: job.attempts + 1,
      reason: "",
      reasonCode: "",
      partitionId: "",
      partitionIds: [],
      deadlineMs: 0,
      ...(from === "RESUMING" ? { serviceId: "" } : {}),
    };
    if (caps) {
      const demand = demandOf(job.spec);
      const spot = place(demand, caps);
      if (!spot) {
        const reason = caps.length > 0
          ? waitingReason(demand, caps)
          : "waiting: no worker's agent answers (see cumulus workers)";
        if (from === "QUEUED" && job.reason !== reason) plan.reasons.push({ id, reason });
        continue;
      }
      const node = caps.find((n) => n.nodeId === spot.nodeId);
      for (const d of spot.devices) {
        const dev = node?.devices.find((x) => x.index === d.index);
        if (dev) dev.free = Math.max(0, dev.free - d.fraction);
      }
      // The placement is recorded before the partition is created (runner).
      Object.assign(patch, {
        nodeId: spot.nodeId,
        gpuDevice: spot.devices[0].index,
        gpuDevices: spot.devices.map((d) => d.index),
        partitionId: PENDING_PARTITION,
      });
    }
    plan.transitions.push({ id, from, to: "SCHEDULED", patch, imageId });
    free--;
  }
  return plan;
}
