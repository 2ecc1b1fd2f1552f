/**
 * Checkpoints as the orchestrator knows them: what a job's runtime reports
 * through `Runtime.ReportCheckpoint`, parsed once at the edge.
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";

/** Tier of a reported checkpoint: the worker's disk (L1), or S3 (L2). */
export type CheckpointTier = "l1" | "l2";

/** A checkpoint a job's runtime reported. */
export interface CheckpointMark {
  /** Checkpoint step, 0 <= step < {@link MAX_CHECKPOINT_STEP}. */
  step: number;
  /** Where it was complete when reported ("l2" implies it was on L1 too). */
  tier: CheckpointTier;
  /** When the orchestrator recorded it, epoch ms. */
  atMs: number;
}

/** Exclusive upper bound of a checkpoint step (the Python library's range). */
export const MAX_CHECKPOINT_STEP = 1e12;

/** Longest `location` a report may carry (bytes of UTF-8). */
export const MAX_CHECKPOINT_LOCATION = 1024;

/** A `ReportCheckpointRequest` as proto-loader delivers it (unverified). */
export interface RawCheckpointReport {
  step?: number | string;
  tier?: string;
  location?: string;
}

/**
 * Validates a report and stamps it with `nowMs`. Throws
 * {@link InvalidArgumentError} naming `step`, `tier` or `location`.
 * @example
 * parseCheckpointReport({ step: 100, tier: "l2" }, Date.now()); // { step: 100, tier: "l2", atMs }
 */
export function parseCheckpointReport(raw: RawCheckpointReport, nowMs: number): CheckpointMark {
  const step = typeof raw.step === "string" ? Number(raw.step) : raw.step ?? 0;
  if (!Number.isSafeInteger(step) || step < 0 || step >= MAX_CHECKPOINT_STEP) {
    throw new InvalidArgumentError(
      "step",
      `must be an integer in [0, ${MAX_CHECKPOINT_STEP}), got ${raw.step}`,
    );
  }
  const tier = raw.tier ?? "";
  if (tier !== "l1" && tier !== "l2") {
    throw new InvalidArgumentError("tier", `must be "l1" or "l2", got ${JSON.stringify(tier)}`);
  }
  const location = raw.location ?? "";
  if (new TextEncoder().encode(location).length > MAX_CHECKPOINT_LOCATION) {
    throw new InvalidArgumentError(
      "location",
      `must be at most ${MAX_CHECKPOINT_LOCATION} bytes`,
    );
  }
  return { step, tier, atMs: nowMs };
}
