/**
 * `cumulus logs`: print (and follow) a job's output.
 * @module
 */
import type { LogLine } from "../sdk/mod.ts";
import { boolFlag, nonNegativeIntFlag, stringFlag, UsageError } from "./args.ts";
import { clientFor, type CommandContext, parseCommandArgs } from "./context.ts";
import type { CliIO } from "./io.ts";

/**
 * Writes a batch of lines: stdout lines to stdout, stderr lines to stderr,
 * consecutive lines of one stream in one write. With `json`, one JSON object
 * per line on stdout; with `allToStderr`, both streams go to stderr.
 */
export async function printLines(
  io: CliIO,
  lines: readonly LogLine[],
  mode: { json?: boolean; allToStderr?: boolean } = {},
): Promise<void> {
  if (mode.json) {
    if (lines.length === 0) return;
    await io.stdout.write(lines.map((l) => JSON.stringify(l) + "\n").join(""));
    return;
  }
  let i = 0;
  while (i < lines.length) {
    const stream = lines[i].stream;
    let text = "";
    while (i < lines.length && lines[i].stream === stream) text += lines[i++].text + "\n";
    const sink = stream === "stderr" || mode.allToStderr ? io.stderr : io.stdout;
    await sink.write(text);
  }
}

/** Runs `cumulus logs`. */
export async function logsCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("logs", argv, [
    { name: "follow", short: "f", type: "boolean" },
    { name: "after", type: "string" },
  ], ctx);
  if (args.help) return 0;
  if (args.positionals.length !== 1) {
    throw new UsageError(
      args.positionals.length === 0
        ? "logs needs a job id (cumulus logs [-f] JOB)"
        : "logs takes one job id",
    );
  }
  const afterText = stringFlag(args.flags, "after");
  const afterSeq = afterText === undefined ? 0 : nonNegativeIntFlag("after", afterText);
  const follow = boolFlag(args.flags, "follow");
  const client = clientFor(ctx, args.url);
  try {
    const job = client.job(args.positionals[0]);
    for await (const event of job.watch({ afterSeq, follow })) {
      await printLines(ctx.io, event.lines, { json: args.json });
    }
  } finally {
    client.close();
  }
  return 0;
}
