/**
 * Why `cumulus-agent join` stopped: one kind per failure an operator fixes
 * differently, each with its exit code.
 * @module
 */

/** The failures of a join, each with its exit code. */
export const JOIN_FAILURES = {
  /** Bad flags, or the agent or library to install not found. */
  usage: 2,
  /** Not run as root. */
  root: 11,
  /** No Docker engine answers (or this machine is a container). */
  docker: 12,
  /** The orchestrator cannot be reached or refused the call. */
  orchestrator: 13,
  /** The join token is unknown, expired or used. */
  token: 14,
  /** The Swarm manager cannot be reached or refused the join. */
  swarm: 15,
  /** A local file cannot be read or written, or a local command (useradd, chown…) failed. */
  local: 16,
} as const;

/** A kind of join failure. */
export type JoinFailure = keyof typeof JOIN_FAILURES;

/** A join stopped; `message` is the one line the operator sees. */
export class JoinError extends Error {
  /** What failed. */
  readonly failure: JoinFailure;
  /** Creates the error. */
  constructor(failure: JoinFailure, message: string) {
    super(message);
    this.name = "JoinError";
    this.failure = failure;
  }

  /** The process exit code of this failure. */
  get exitCode(): number {
    return JOIN_FAILURES[this.failure];
  }
}
