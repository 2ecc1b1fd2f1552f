/**
 * Docker Engine API access for the Swarm manager (dockerode).
 * @module
 */
export { connectDocker } from "./docker.ts";
export { decodeAll, type DockerFrame, FrameDecoder, parseDockerTime } from "./frames.ts";
export {
  JOB_PIDS_LIMIT,
  type NodeInfo,
  type ServiceInfo,
  type ServiceRequest,
  SwarmClient,
  type TaskInfo,
  TERMINAL_TASK_STATES,
} from "./swarm_client.ts";
