/**
 * The Cumulus orchestrator: job store, queue, Swarm services, log relay and
 * the gRPC API.
 * @module
 */
export { type OrchestratorHandle, type StartOptions, startOrchestrator } from "./orchestrator.ts";
export { JobManager, type ManagerDeps, type WatchEvent, type WatchOptions } from "./job_manager.ts";
export { JOB_LABEL, serviceName } from "./service_spec.ts";
export { outcomeOf } from "./runner.ts";
export { type CrashGuard, installCrashGuard } from "./crash_guard.ts";
export { assertSafeListen, isLoopbackHost, type ListenSafety } from "./listen_safety.ts";
export { type S3Gate, type S3GateOptions, startS3Gate } from "./s3_gate.ts";
