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
export { AGENT_USAGE, processIo, runAgentCommand } from "./commands.ts";
export type { AgentIo } from "./commands.ts";
