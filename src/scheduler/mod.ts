/**
 * Pure scheduling policy (no I/O).
 * @module
 */
export { pickJobs, type QueuedJob } from "./queue.ts";
