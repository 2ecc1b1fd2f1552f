/**
 * Persistent job store (SQLite through node:sqlite).
 * @module
 */
export { type JobPatch, JobStore, type ListQuery, type NewJob } from "./job_store.ts";
export { type NewToken, type TokenRecord, TokenStore } from "./token_store.ts";
export {
  type JoinDecision,
  type JoinTokenRecord,
  WORKER_STATES,
  type WorkerRecord,
  type WorkerState,
  WorkerStore,
} from "./worker_store.ts";
