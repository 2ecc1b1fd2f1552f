/**
 * The orchestrator's last line of defence: an error that a dependency throws
 * outside any promise of ours (dockerode's HTTP modem following a redirect, a
 * socket error event nobody listens to) would end the whole process and every
 * client's stream with it. The guard logs it and keeps serving; the store is
 * the truth, so nothing half-done is trusted afterwards. Errors are counted so
 * /metrics and tests can see them.
 * @module
 */

/** A guard installed on this process; remove it when the orchestrator stops. */
export interface CrashGuard {
  /** Errors contained so far (uncaught exceptions and unhandled rejections). */
  readonly contained: number;
  /** Removes the listeners. */
  remove(): void;
}

function describe(value: unknown): string {
  if (value instanceof Error) {
    const where = (value.stack ?? "").split("\n").slice(1, 3).map((l) => l.trim()).join(" ");
    return `${value.name}: ${value.message}${where ? ` (${where})` : ""}`;
  }
  return String(value);
}

/**
 * Contains uncaught exceptions and unhandled promise rejections of this process:
 * each is logged with `log` (one line) instead of ending the process.
 * @param log Where the one-line report goes.
 * @returns The installed guard.
 * @example
 * const guard = installCrashGuard((line) => console.error(line));
 * // ... serve ...
 * guard.remove();
 */
export function installCrashGuard(log: (line: string) => void): CrashGuard {
  let contained = 0;
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    contained++;
    log(`contained an uncaught exception (the orchestrator keeps serving): ${describe(e.error)}`);
  };
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    contained++;
    log(`contained an unhandled rejection (the orchestrator keeps serving): ${describe(e.reason)}`);
  };
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  return {
    get contained() {
      return contained;
    },
    remove() {
      globalThis.removeEventListener("error", onError);
      globalThis.removeEventListener("unhandledrejection", onRejection);
    },
  };
}
