/**
 * The one sleep of the project: a timer that an abort, if given, ends early.
 * @module
 */

/**
 * Resolves after `ms`, or at once when `signal` aborts (it never rejects:
 * loops check `signal.aborted` themselves), leaving no timer or listener.
 * Without a signal it is a plain sleep.
 * @param ms Milliseconds to wait.
 * @param signal Ends the wait early (optional).
 * @returns A promise that resolves when the pause is over.
 * @example
 * while (!signal.aborted) {
 *   await tick();
 *   await pause(500, signal);
 * }
 */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
