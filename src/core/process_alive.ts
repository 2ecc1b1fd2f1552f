/**
 * Whether a process lives: the one check every pid file reader needs.
 * @module
 */

/**
 * True while process `pid` exists (a zombie counts until reaped). Sends
 * SIGCONT, which does nothing to a running process and, unlike signal 0,
 * Deno accepts.
 * @example
 * processAlive(Deno.pid); // true
 */
export function processAlive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}
