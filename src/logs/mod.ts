/**
 * Per-job append-only logs with sequence numbers and fan-out to watchers.
 * @module
 */
export { type IncomingLine, JobLog, type LastLine } from "./job_log.ts";
export { LogHub } from "./log_hub.ts";
