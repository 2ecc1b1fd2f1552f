/**
 * The prerequisite check `cumulus up` and `cumulus image` run first: asks the
 * Docker engine, probes the machine, prints one line per missing piece with
 * its fix, and runs the fixes when asked to (--install-prereqs, as root).
 * @module
 */
import type Docker from "dockerode";
import {
  fixCommands,
  formatMissing,
  missingPrereqs,
  type PrereqScope,
  probeMachine,
  runFixes,
} from "./prereqs.ts";

/** Raised when prerequisites are missing and were not installed. */
export class PrereqError extends Error {
  /** Stable code. */
  readonly code = "PREREQS_MISSING";
  /** @param message What to do. */
  constructor(message: string) {
    super(message);
    this.name = "PrereqError";
  }
}

/** How {@link checkPrereqs} behaves. */
export interface PrereqOptions {
  /** Run the fixes (root only) instead of failing. */
  install: boolean;
  env: (name: string) => string | undefined;
  say(line: string): Promise<unknown>;
}

/**
 * Checks the prerequisites of `scope`; with `install`, runs the fixes and
 * checks again.
 * @returns The engine's `info()` (the engine answered).
 * @throws {PrereqError} when something is missing (the lines above say what).
 */
export async function checkPrereqs(
  docker: Docker,
  engine: string,
  scope: PrereqScope,
  o: PrereqOptions,
  // deno-lint-ignore no-explicit-any
): Promise<any> {
  for (let round = 0;; round++) {
    // deno-lint-ignore no-explicit-any
    let info: any = null;
    try {
      info = await withTimeout(docker.info(), 10_000);
    } catch {
      // Reported below as a missing engine.
    }
    const facts = await probeMachine(engine, info !== null, o.env);
    const missing = missingPrereqs(facts, scope);
    if (missing.length === 0) return info;
    for (const line of formatMissing(missing)) await o.say(line);
    const fixes = fixCommands(missing);
    if (!o.install || round > 0 || fixes.length === 0 || missing.some((m) => !m.fix)) {
      throw new PrereqError(
        o.install
          ? "prerequisites still missing after --install-prereqs (see the lines above)"
          : `prerequisites missing (see the lines above): run ${
            fixes.map((f) => `'${f}'`).join(", then ") || "the fixes"
          } as root, or add --install-prereqs (as root) to run them`,
      );
    }
    await o.say(`--install-prereqs: running ${fixes.length} command(s) as root …`);
    await runFixes(fixes, facts.uid);
    // A freshly started engine needs a moment before it answers.
    for (let i = 0; i < 20; i++) {
      if (await withTimeout(docker.info(), 2_000).then(() => true, () => false)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
