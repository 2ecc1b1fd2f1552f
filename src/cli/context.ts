/**
 * What every subcommand receives: I/O, global flags and a lazily created
 * client (so usage errors never open a connection).
 * @module
 */
import {
  CumulusClient,
  DEFAULT_ORCHESTRATOR_URL,
  parseOrchestratorEndpoint,
  resolveToken,
} from "../sdk/mod.ts";
import {
  boolFlag,
  type FlagSpec,
  parseArgs,
  type ParsedArgs,
  stringFlag,
  UsageError,
} from "./args.ts";
import { COMMAND_HELP } from "./help.ts";
import type { CliIO } from "./io.ts";
import { readUpEndpoint } from "./up_endpoint.ts";

/** Flags every client command accepts, before or after its name. */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { name: "url", type: "string" },
  { name: "json", type: "boolean" },
  { name: "help", short: "h", type: "boolean" },
];

/** The environment of one command run. */
export interface CommandContext {
  /** Injected I/O. */
  io: CliIO;
  /** --url given before the command name, if any. */
  url: string | undefined;
  /** --json given before the command name. */
  json: boolean;
}

/** A subcommand: parses its own argv and returns the exit code. */
export type Command = (argv: string[], ctx: CommandContext) => Promise<number>;

/**
 * The client for a command: --url after the command wins over --url before
 * it, then CUMULUS_ORCHESTRATOR_URL (read through the injected env), then the
 * orchestrator `cumulus up` recorded (its grpcs:// address), then the SDK default.
 * A TLS address is verified against CUMULUS_CA_PEM, else CUMULUS_CA_FILE, else the CA `cumulus up`
 * recorded, else the system store.
 * Its token is `token`, else CUMULUS_TOKEN, else the credentials file's.
 */
export function clientFor(
  ctx: CommandContext,
  url: string | undefined,
  token?: string,
): CumulusClient {
  const chosen = url ?? ctx.url ?? nonEmpty(ctx.io.env("CUMULUS_ORCHESTRATOR_URL"));
  const up = readUpEndpoint(ctx.io.env);
  const target = chosen ?? up?.url ?? DEFAULT_ORCHESTRATOR_URL;
  const caFile = nonEmpty(ctx.io.env("CUMULUS_CA_FILE")) ?? up?.caFile;
  let caPem = nonEmpty(ctx.io.env("CUMULUS_CA_PEM"));
  if (!caPem && caFile && parseOrchestratorEndpoint(target).tls) {
    try {
      caPem = Deno.readTextFileSync(caFile);
    } catch (err) {
      throw new UsageError(`CUMULUS_CA_FILE: cannot read ${caFile}: ${(err as Error).message}`);
    }
  }
  return new CumulusClient(target, {
    caPem,
    token: resolveToken(token, (n) => ctx.io.env(n)),
  });
}

function nonEmpty(v: string | undefined): string | undefined {
  return v && v.trim() !== "" ? v : undefined;
}

/** A subcommand's parsed argv with the global flags resolved. */
export interface CommandArgs extends ParsedArgs {
  /** --json before or after the command name. */
  json: boolean;
  /** --url after the command name (see {@link clientFor}). */
  url: string | undefined;
  /** --help / -h was given: the command printed its usage and must return 0. */
  help: boolean;
}

/**
 * Parses a subcommand's argv (its flags plus the global ones) and prints
 * its usage text when --help is given.
 */
export async function parseCommandArgs(
  name: string,
  argv: readonly string[],
  flags: readonly FlagSpec[],
  ctx: CommandContext,
  options: { stopAtPositional?: boolean } = {},
): Promise<CommandArgs> {
  const parsed = parseArgs(argv, [...GLOBAL_FLAGS, ...flags], { ...options, command: name });
  const help = boolFlag(parsed.flags, "help");
  if (help) await ctx.io.stdout.write(COMMAND_HELP[name] + "\n");
  return {
    ...parsed,
    json: ctx.json || boolFlag(parsed.flags, "json"),
    url: stringFlag(parsed.flags, "url"),
    help,
  };
}
