/**
 * SSH transport from the orchestrator to worker agents: pinned host keys, one reused connection
 * per worker, argv-only commands through the agent's forced command (`cumulus-agent
 * ssh-dispatch`), typed errors. See docs/workers.md for the security model.
 * @module
 */
export {
  HostKeyMismatchError,
  SshAuthError,
  SshTimeoutError,
  WorkerUnreachableError,
} from "./errors.ts";
export { fingerprint, type HostKeyVerdict, hostSpec, KnownHosts } from "./known_hosts.ts";
export {
  type CommandResult,
  type CommandRunner,
  type RunOptions,
  SshPool,
  type SshPoolOptions,
  type SshTarget,
} from "./pool.ts";
export { publicKeyLine } from "./public_key.ts";
