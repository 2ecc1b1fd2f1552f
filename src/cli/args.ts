/**
 * A small argv parser: `--flag value`, `--flag=value`, boolean switches,
 * repeated flags, short aliases and `--`. Errors are {@link UsageError}s,
 * which the CLI turns into exit code 2.
 * @module
 */
import { BYTES_GRAMMAR, parseBytesText } from "../core/bytes.ts";
import { parseDurationText } from "../core/duration.ts";

/** A command-line mistake: printed as one line, exit code 2. */
export class UsageError extends Error {
  /** Stable code of every usage error. */
  readonly code = "USAGE";
  /** Creates the error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One accepted flag. */
export interface FlagSpec {
  /** Long name without dashes, e.g. `gpu-memory`. */
  name: string;
  /** One-letter alias without the dash, e.g. `f`. */
  short?: string;
  /** `boolean` flags take no value; `string` flags take exactly one. */
  type: "boolean" | "string";
  /** The flag may be given several times (values collected in order). */
  multiple?: boolean;
}

/** Parsed flags by long name: booleans, single strings, or lists for `multiple`. */
export type FlagValues = Record<string, boolean | string | string[] | undefined>;

/** The result of {@link parseArgs}. */
export interface ParsedArgs {
  /** Values of the flags that were given. */
  flags: FlagValues;
  /** Non-flag arguments (and everything after `--` or the first positional, if asked). */
  positionals: string[];
  /** True when a `--` separator was seen. */
  sawSeparator: boolean;
}

/** Options of {@link parseArgs}. */
export interface ParseOptions {
  /**
   * Stop parsing flags at the first positional: it and everything after are
   * positionals (for `run`, whose command has flags of its own).
   */
  stopAtPositional?: boolean;
  /** Command name used in messages, e.g. `run`. */
  command?: string;
}

/**
 * Parses `argv` against `specs`.
 * @example
 * parseArgs(["-f", "--after=3", "j-0123456789ab"], [
 *   { name: "follow", short: "f", type: "boolean" },
 *   { name: "after", type: "string" },
 * ]);
 * // { flags: { follow: true, after: "3" }, positionals: ["j-0123456789ab"], sawSeparator: false }
 */
export function parseArgs(
  argv: readonly string[],
  specs: readonly FlagSpec[],
  options: ParseOptions = {},
): ParsedArgs {
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const where = options.command ? ` for 'cumulus ${options.command}'` : "";
  const flags: FlagValues = {};
  const positionals: string[] = [];
  let sawSeparator = false;

  const set = (spec: FlagSpec, value: string | boolean, shown: string) => {
    if (spec.multiple) {
      const list = (flags[spec.name] as string[] | undefined) ?? [];
      list.push(value as string);
      flags[spec.name] = list;
    } else if (flags[spec.name] !== undefined && spec.type === "string") {
      throw new UsageError(`${shown} given twice${where}`);
    } else {
      flags[spec.name] = value;
    }
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      sawSeparator = true;
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith("--") || (arg.startsWith("-") && arg.length > 1 && !isNumber(arg))) {
      const long = arg.startsWith("--");
      const body = long ? arg.slice(2) : arg.slice(1);
      const eq = body.indexOf("=");
      const key = eq >= 0 ? body.slice(0, eq) : body;
      const spec = long ? byLong.get(key) : byShort.get(key);
      const shown = long ? `--${key}` : `-${key}`;
      if (!spec) throw new UsageError(`unknown flag ${shown}${where}`);
      if (spec.type === "boolean") {
        if (eq >= 0) throw new UsageError(`${shown} takes no value${where}`);
        set(spec, true, shown);
        continue;
      }
      let value: string;
      if (eq >= 0) {
        value = body.slice(eq + 1);
      } else {
        if (i + 1 >= argv.length) throw new UsageError(`${shown} needs a value${where}`);
        value = argv[++i];
      }
      set(spec, value, shown);
      continue;
    }
    if (options.stopAtPositional) {
      positionals.push(...argv.slice(i));
      break;
    }
    positionals.push(arg);
  }
  return { flags, positionals, sawSeparator };
}

function isNumber(arg: string): boolean {
  return /^-\d+(\.\d+)?$/.test(arg);
}

/** A string flag's value, or undefined. */
export function stringFlag(flags: FlagValues, name: string): string | undefined {
  const v = flags[name];
  return typeof v === "string" ? v : undefined;
}

/** A repeated flag's values ([] when absent). */
export function listFlag(flags: FlagValues, name: string): string[] {
  const v = flags[name];
  return Array.isArray(v) ? v : [];
}

/** True when a boolean flag was given. */
export function boolFlag(flags: FlagValues, name: string): boolean {
  return flags[name] === true;
}

/**
 * Parses a number flag; throws a {@link UsageError} naming the flag when the
 * text is not a finite number. Range checks are left to the server, which
 * owns the rules.
 */
export function numberFlag(name: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n)) {
    throw new UsageError(`--${name}: not a number: ${JSON.stringify(text)}`);
  }
  return n;
}

/** Parses a positive integer flag (e.g. `--limit`). */
export function positiveIntFlag(name: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new UsageError(`--${name}: expected a positive integer, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** Parses a non-negative integer flag (e.g. `--after`). */
export function nonNegativeIntFlag(name: string, text: string): number {
  if (!/^\d+$/.test(text)) {
    throw new UsageError(`--${name}: expected an integer >= 0, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/**
 * Parses a duration in seconds with the one duration grammar
 * ({@link parseDurationText}): a plain number (`90`, `0.5`) or units (`90s`,
 * `10m`, `2h`, `1h30m`, `1d`). Zero and negative plain numbers pass through
 * so the server can reject them with its own message.
 * @example
 * parseDuration("duration", "1h30m"); // 5400
 */
export function parseDuration(name: string, text: string): number {
  const t = text.trim();
  if (/^-\d+(\.\d+)?$/.test(t)) return Number(t);
  const seconds = parseDurationText(t);
  if (seconds === null) {
    throw new UsageError(
      `--${name}: expected seconds or a duration like 90s, 10m, 2h, 1h30m; got ${
        JSON.stringify(text)
      }`,
    );
  }
  return seconds;
}

/**
 * Parses a byte size with the one size grammar ({@link parseBytesText}):
 * `1048576`, `512K`, `100M`, `100MiB`, `1G`, `1.5GB`. K/M/G and KiB/MiB/GiB
 * are binary; KB/MB/GB decimal.
 * @example
 * parseSize("max-bundle-size", "100M"); // 104857600
 */
export function parseSize(name: string, text: string): number {
  const bytes = parseBytesText(text);
  if (bytes === null || bytes < 1) {
    throw new UsageError(
      `--${name}: expected a size like 500K, 100M or 1G (${BYTES_GRAMMAR}), got ${
        JSON.stringify(text)
      }`,
    );
  }
  return bytes;
}
