/**
 * Command-line flags of the benchmarks: `--name N` or `--name=N`, positive
 * integers only, over a record of defaults.
 * @module
 */

/** A bad benchmark flag (unknown, or not a positive integer). */
export class BenchFlagError extends Error {
  /** Stable code. */
  readonly code = "INVALID_ARGUMENT";
  /** Creates the error for `flag`. */
  constructor(flag: string, why: string) {
    super(`${flag}: ${why}`);
    this.name = "BenchFlagError";
  }
}

/**
 * Parses `args` into a copy of `defaults`: each `--key N` (or `--key=N`)
 * whose key is one of the defaults' keys sets that value.
 * @throws {BenchFlagError} on an unknown flag or a value that is not a positive integer
 * @example
 * parseIntFlags(["--jobs", "1000"], { jobs: 100, clients: 8 }); // { jobs: 1000, clients: 8 }
 */
export function parseIntFlags<T extends Record<string, number>>(
  args: readonly string[],
  defaults: T,
): T {
  const out: Record<string, number> = { ...defaults };
  const known = Object.keys(defaults).map((k) => `--${k}`).join(", ");
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split("=", 2);
    const key = flag.slice(2);
    if (!flag.startsWith("--") || !(key in defaults)) {
      throw new BenchFlagError(flag, `unknown flag (known: ${known})`);
    }
    const raw = inline ?? args[++i];
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) {
      throw new BenchFlagError(flag, `must be a positive integer, got ${raw}`);
    }
    out[key] = n;
  }
  return out as T;
}
