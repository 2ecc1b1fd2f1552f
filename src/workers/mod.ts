/**
 * Workers: how the orchestrator reaches each node's `cumulus-agent` (a
 * {@link Transport}: one persistent local agent child, or SSH), typed agent calls, and the
 * node inventory (GPUs, partitions, free share per device).
 * @module
 */
export {
  AgentClient,
  AgentCommandError,
  type AgentDevice,
  AgentExit,
  type AgentGpu,
  type AgentInventory,
  type AgentPartition,
  type CreatedPartition,
  type CreateGroupRequest,
} from "./agent_client.ts";
export { type JoinedWorker, nodeOfWorker, workerOfNode } from "./joined.ts";
export { type LocalChannelOptions, LocalChannelTransport } from "./agent_channel.ts";
export {
  type DeviceInfo,
  type DeviceUse,
  GPU_LABEL_PREFIX,
  type NodeInventory,
  parseWorkerTargets,
  type RegistryDeps,
  type SshTarget,
  withPartitions,
  WorkerRegistry,
} from "./registry.ts";
export {
  localAgentCommand,
  LocalAgentError,
  LocalTransport,
  type LocalTransportOptions,
  type RunResult,
  type Transport,
} from "./transport.ts";
