/**
 * The worker agent (`cumulus-agent`): Chronos partitions through the FFI binding to
 * libchronos.so, the commands the orchestrator runs over SSH, and the GPU layer: the worker's
 * GPU inventory, grant files for the OCI runtime wrapper, and MPS control daemons.
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
export { GPU_ERROR_STATUS, GpuLayerError } from "./gpu_error.ts";
export {
  accessOf,
  discoverHostGpus,
  DRIVER_DIR,
  findDriverFiles,
  GPU_ACCESS,
  parseNvidiaInformation,
} from "./gpu_inventory.ts";
export type {
  DiscoverOptions,
  DriverFiles,
  GpuAccess,
  GrantMount,
  HostGpus,
  NvidiaInformation,
} from "./gpu_inventory.ts";
export { GPU_VENDOR, mapDevicesToGpus, normalizePciBusId, openClVendor } from "./gpu_map.ts";
export type { ChronosDeviceView, GpuVendor, PhysicalGpu } from "./gpu_map.ts";
export {
  GpuSession,
  gpuSettings,
  inventoryOf,
  loadGpuView,
  mpsGpus,
  parseGpuMap,
  provisionGpus,
} from "./gpu_layer.ts";
export type {
  ChronosDevice,
  DeviceGpu,
  GpuSettings,
  GpuView,
  Inventory,
  InventoryDevice,
  ProvisionOptions,
} from "./gpu_layer.ts";
export {
  buildGrant,
  DEFAULT_GRANTS_DIR,
  GRANT_VERSION,
  grantJobId,
  listGrantIds,
  PARTITION_ID_RE,
  readGrant,
  removeGrant,
  staleGrants,
  writeGrant,
} from "./grants.ts";
export type { GpuGrant, GrantDevice, GrantInput } from "./grants.ts";
export {
  DEFAULT_MPS_DIR,
  MPS_ACTION,
  MPS_IDLE_STOP_MS,
  MpsControl,
  mpsPaths,
  planMps,
} from "./mps.ts";
export type {
  MpsAction,
  MpsControlOptions,
  MpsDaemonState,
  MpsEnsureResult,
  MpsGpu,
  MpsPartitionView,
  MpsPaths,
  MpsPlan,
} from "./mps.ts";
export { GpuKeeper } from "./gpu_keeper.ts";
export type { GpuKeeperOptions } from "./gpu_keeper.ts";
