/**
 * The worker agent (`cumulus-agent`): Chronos partitions through the FFI binding to
 * libchronos.so, and the commands the orchestrator runs over SSH.
 * @module
 */
export {
  Chronos,
  CHRONOS_STATUS,
  ChronosError,
  defaultLibraryPath,
  resolveLibraryPath,
} from "./chronos.ts";
export type {
  ChronosOptions,
  ChronosStats,
  ChronosStatus,
  CreatedPartition,
  CreateRequest,
  DeviceInfo,
  DeviceStats,
  LibraryLocation,
  Partition,
  PartitionList,
  RepairResult,
  Waiter,
} from "./chronos.ts";
export { AGENT_USAGE, processIo, releaseJob, runAgentCommand } from "./commands.ts";
export { ExpiryDaemon } from "./daemon.ts";
export type { ExpiryDaemonOptions, JobContainers, PartitionStore } from "./daemon.ts";
export { DISPATCH_ALLOWED, DispatchRefusedError, parseDispatchCommand } from "./ssh_dispatch.ts";
export type { AgentIo } from "./commands.ts";
