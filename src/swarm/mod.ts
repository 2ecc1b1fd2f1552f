/**
 * Docker Engine API access for the Swarm manager (dockerode).
 * @module
 */
export { connectDocker } from "./docker.ts";
export {
  type ContainerAction,
  type ContainerEvent,
  NODE_ID_LABEL,
  parseContainerEvent,
  SERVICE_ID_LABEL,
} from "./events.ts";
export { decodeAll, type DockerFrame, FrameDecoder, parseDockerTime } from "./frames.ts";
export {
  firstHostAddress,
  JOB_NETWORK_GENERATION_LABEL,
  JOB_NETWORK_LABEL,
  JOB_PIDS_LIMIT,
  type JobNetworkInfo,
  NetworkGoneError,
  type NodeAvailability,
  type NodeInfo,
  type ServiceInfo,
  type ServiceRequest,
  SwarmClient,
  type SwarmJoinInfo,
  type TaskInfo,
  TERMINAL_TASK_STATES,
} from "./swarm_client.ts";

export {
  pushImage,
  type PushOptions,
  type PushProgress,
  PushTracker,
  registryDigest,
} from "./image_push.ts";
export {
  parseDockerConfig,
  readDockerConfig,
  type RegistryAuth,
  RegistryAuthError,
} from "./registry_auth.ts";
