/**
 * Per-job append-only logs with sequence numbers and fan-out to watchers.
 * @module
 */
export {
  type IncomingLine,
  JobLog,
  type JobLogOptions,
  type LastLine,
  type LineOrigin,
  LOG_CAP_NOTICE,
} from "./job_log.ts";
export { LogHub } from "./log_hub.ts";
export type { EncodedLines } from "./line_tail.ts";
