/**
 * Pure scheduling policy (no I/O).
 * @module
 */
export { pickJobs, type QueuedJob } from "./queue.ts";
export {
  canEverFit,
  type DeviceCapacity,
  fractionOn,
  type GpuDemand,
  matchesConstraints,
  type NodeCapacity,
  place,
  type Placement,
  shareOf,
  waitingReason,
} from "./placement.ts";
