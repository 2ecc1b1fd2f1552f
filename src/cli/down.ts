/**
 * `cumulus down`: stops what `cumulus up` started (agent daemon,
 * orchestrator, S3 server) and keeps the user's data: the data dir with the
 * job records, logs and checkpoints stays. Running it twice is harmless.
 * @module
 */
import { UsageError } from "./args.ts";
import { removeUpEndpoint } from "./up_endpoint.ts";
import { type CommandContext, parseCommandArgs } from "./context.ts";
import { defaultUpDataDir, EMBEDDED_PIECES, EmbeddedPaths, stopPiece } from "./embedded.ts";

const FLAGS = [{ name: "data-dir", type: "string" as const }];

/** Runs `cumulus down`. */
export async function downCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("down", argv, FLAGS, ctx);
  if (args.help) return 0;
  if (args.positionals.length > 0) throw new UsageError("'cumulus down' takes no arguments");
  const paths = new EmbeddedPaths(
    (args.flags["data-dir"] as string | undefined) ?? defaultUpDataDir(ctx.io.env),
    ctx.io.cwd(),
  );
  const stopped: Record<string, number | null> = {};
  for (const piece of EMBEDDED_PIECES) {
    const pid = await stopPiece(paths, piece);
    stopped[piece] = pid;
    if (!args.json) {
      await ctx.io.stdout.write(
        pid === null ? `${piece}: not running\n` : `${piece}: stopped (pid ${pid})\n`,
      );
    }
  }
  // Clients here stop dialling the stopped orchestrator by default.
  await removeUpEndpoint(ctx.io.env, paths.dataDir);
  if (args.json) {
    await ctx.io.stdout.write(JSON.stringify({ dataDir: paths.dataDir, stopped }) + "\n");
  } else {
    await ctx.io.stdout.write(`data kept in ${paths.dataDir}\n`);
  }
  return 0;
}
