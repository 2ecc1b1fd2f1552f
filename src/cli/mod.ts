/**
 * The `cumulus` command line: global flags, dispatch to one file per
 * subcommand, and the error contract (one line on stderr; exit 2 for usage
 * errors, 1 for the rest).
 * @module
 */
import { boolFlag, parseArgs, stringFlag, UsageError } from "./args.ts";
import { agentCommand } from "./agent.ts";
import { type Command, type CommandContext, GLOBAL_FLAGS } from "./context.ts";
import { errorLine, exitCodeFor } from "./errors.ts";
import { COMMAND_HELP, MAIN_HELP } from "./help.ts";
import { type CliIO, denoIO } from "./io.ts";
import { jobsCommand } from "./jobs.ts";
import { killCommand } from "./kill.ts";
import { logsCommand } from "./logs.ts";
import { runCommand } from "./run.ts";
import { versionCommand } from "./version.ts";
import { workersCommand } from "./workers.ts";

export { type CliIO, denoIO, MemorySink } from "./io.ts";
export { CUMULUS_VERSION } from "./version.ts";

const CLIENT_COMMANDS: Readonly<Record<string, Command>> = {
  run: runCommand,
  jobs: jobsCommand,
  logs: logsCommand,
  kill: killCommand,
  workers: workersCommand,
  version: versionCommand,
  // Loaded on use: `up` pulls in the Docker client, which other commands never need.
  up: async (argv, ctx) => (await import("./up.ts")).upCommand(argv, ctx),
  down: async (argv, ctx) => (await import("./down.ts")).downCommand(argv, ctx),
  status: async (argv, ctx) => (await import("./status.ts")).statusCommand(argv, ctx),
  image: async (argv, ctx) => (await import("./image.ts")).imageCommand(argv, ctx),
  certs: async (argv, ctx) => (await import("./certs.ts")).certsCommand(argv, ctx),
  token: async (argv, ctx) => (await import("./token.ts")).tokenCommand(argv, ctx),
  login: async (argv, ctx) => (await import("./login.ts")).loginCommand(argv, ctx),
  worker: async (argv, ctx) => (await import("./worker.ts")).workerCommand(argv, ctx),
};

/** Server commands get their argv untouched: they parse their own flags. */
const SERVER_COMMANDS: Readonly<Record<string, (argv: string[]) => Promise<number>>> = {
  orchestrator: async (argv) => (await import("./orchestrator.ts")).orchestratorCommand(argv),
  agent: agentCommand,
  // Not for people: `cumulus up` runs its pieces under it (docs/operations.md).
  supervise: async (argv) => (await import("./supervise.ts")).superviseCommand(argv),
  // Not for people either: the S3 server `cumulus up` runs (s3rver, in this same program).
  s3: async (argv) => (await import("./s3.ts")).s3Command(argv),
};

/**
 * Runs the CLI with `argv` (without the program name) and returns the exit
 * code. Never throws: every error becomes one `cumulus: ...` line on stderr.
 * @example
 * Deno.exit(await runCli(Deno.args));
 */
export async function runCli(argv: readonly string[], io: CliIO = denoIO()): Promise<number> {
  try {
    // `cumulus --version` is the same as `cumulus version`.
    if (argv[0] === "--version" || argv[0] === "-V") {
      return await CLIENT_COMMANDS.version(argv.slice(1), { io, url: undefined, json: false });
    }
    // Global flags may precede the command name: `cumulus --url h:1 jobs`.
    const head = parseArgs(argv, GLOBAL_FLAGS, { stopAtPositional: true });
    const [name, ...rest] = head.positionals;
    if (name === undefined || name === "help") {
      const topic = name === "help" ? rest[0] : undefined;
      if (topic !== undefined && !(topic in COMMAND_HELP)) {
        throw new UsageError(`unknown command ${JSON.stringify(topic)} (see 'cumulus --help')`);
      }
      if (name === undefined && !boolFlag(head.flags, "help")) {
        await io.stderr.write(MAIN_HELP + "\n");
        return 2;
      }
      await io.stdout.write((topic ? COMMAND_HELP[topic] : MAIN_HELP) + "\n");
      return 0;
    }
    if (name in SERVER_COMMANDS) return await SERVER_COMMANDS[name](rest);
    const command = CLIENT_COMMANDS[name];
    if (!command) {
      throw new UsageError(`unknown command ${JSON.stringify(name)} (see 'cumulus --help')`);
    }
    const ctx: CommandContext = {
      io,
      url: stringFlag(head.flags, "url"),
      json: boolFlag(head.flags, "json"),
    };
    // `cumulus -h run` means the same as `cumulus run -h`.
    return await command(boolFlag(head.flags, "help") ? ["--help", ...rest] : rest, ctx);
  } catch (err) {
    if (err instanceof Deno.errors.BrokenPipe) return 0;
    try {
      await io.stderr.write(errorLine(err) + "\n");
    } catch {
      // stderr is gone: the exit code is all that is left to report.
    }
    return exitCodeFor(err);
  }
}
