/**
 * Typed errors of the SSH transport. Callers branch on the class (or `code`), never on text.
 * @module
 */
import { CumulusError } from "../core/mod.ts";

/** The worker cannot be reached over SSH now (refused, timed out, connection lost). */
export class WorkerUnreachableError extends CumulusError {
  /** `host:port` of the worker. */
  readonly target: string;
  /** Creates the error. */
  constructor(target: string, message: string, options?: ErrorOptions) {
    super("UNAVAILABLE", `worker ${target} unreachable: ${message}`, options);
    this.name = "WorkerUnreachableError";
    this.target = target;
  }
}

/**
 * The worker presented a host key other than the one pinned for it: a reinstalled machine or
 * someone in the middle. Refused; an operator must remove the old key from the known-hosts file.
 */
export class HostKeyMismatchError extends CumulusError {
  /** `host:port` of the worker. */
  readonly target: string;
  /** SHA256 fingerprint of the pinned key. */
  readonly expected: string;
  /** SHA256 fingerprint of the key the worker presented. */
  readonly actual: string;
  /** Creates the error. */
  constructor(target: string, expected: string, actual: string, knownHostsPath: string) {
    super(
      "FAILED_PRECONDITION",
      `HOST KEY MISMATCH for worker ${target}: pinned ${expected}, presented ${actual}; ` +
        `refusing to connect. If the worker was reinstalled, remove its line from ` +
        `${knownHostsPath}`,
    );
    this.name = "HostKeyMismatchError";
    this.target = target;
    this.expected = expected;
    this.actual = actual;
  }
}

/** The worker refused the orchestrator's key (not authorised, or the wrong user). */
export class SshAuthError extends CumulusError {
  /** `host:port` of the worker. */
  readonly target: string;
  /** Creates the error. */
  constructor(target: string, message: string) {
    super("FAILED_PRECONDITION", `worker ${target} refused the SSH key: ${message}`);
    this.name = "SshAuthError";
    this.target = target;
  }
}

/**
 * A command did not finish within its timeout; it may or may not have taken effect. A worker that
 * does not answer counts as unreachable, so this is a {@link WorkerUnreachableError}.
 */
export class SshTimeoutError extends WorkerUnreachableError {
  /** Creates the error. */
  constructor(target: string, what: string, timeoutMs: number) {
    super(target, `'${what}' did not finish in ${timeoutMs} ms (it may have taken effect)`);
    this.name = "SshTimeoutError";
  }
}
