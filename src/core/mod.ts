/**
 * Core domain types and errors shared by every Cumulus component.
 * @module
 */
export * from "./bytes.ts";
export * from "./checkpoint.ts";
export * from "./duration.ts";
export * from "./errors.ts";
export * from "./job.ts";
export * from "./job_resources.ts";
export * from "./pause.ts";
export * from "./token.ts";
export * from "./join.ts";
export * from "./image_ref.ts";
export * from "./process_alive.ts";
