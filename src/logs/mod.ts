/**
 * Per-job append-only logs with sequence numbers and fan-out to watchers.
 * @module
 */
export { type IncomingLine, JobLog, type LastLine, type LineOrigin } from "./job_log.ts";
export { LogHub } from "./log_hub.ts";
export type { EncodedLines } from "./line_tail.ts";
