/**
 * The registry the Swarm's nodes pull job images from: its configuration and
 * its process (Debian's `docker-registry`).
 * @module
 */
export { type RegistryConfigOptions, registryConfigYaml, trustDirOf } from "./registry_config.ts";
export {
  REGISTRY_BINARY,
  RegistryError,
  type RegistryOptions,
  registryPaths,
  type RunningRegistry,
  startRegistry,
  trustRegistry,
} from "./registry_process.ts";
export {
  type OwnedRegistry,
  type OwnedRegistryOptions,
  registryPidFile,
  startOwnedRegistry,
  stopLeftRegistry,
} from "./owned.ts";
