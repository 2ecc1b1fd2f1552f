/**
 * `cumulus workers`: list the Swarm nodes.
 * @module
 */
import { UsageError } from "./args.ts";
import { clientFor, type CommandContext, parseCommandArgs } from "./context.ts";
import { formatWorkers } from "./format.ts";

/** Runs `cumulus workers`. */
export async function workersCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("workers", argv, [], ctx);
  if (args.help) return 0;
  if (args.positionals.length > 0) {
    throw new UsageError(`workers takes no arguments, got ${JSON.stringify(args.positionals[0])}`);
  }
  const client = clientFor(ctx, args.url);
  try {
    const workers = await client.listWorkers();
    await ctx.io.stdout.write(
      args.json ? JSON.stringify(workers, null, 2) + "\n" : formatWorkers(workers),
    );
  } finally {
    client.close();
  }
  return 0;
}
