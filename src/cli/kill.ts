/**
 * `cumulus kill`: cancel jobs.
 * @module
 */
import type { JobRecord } from "../sdk/mod.ts";
import { UsageError } from "./args.ts";
import { clientFor, type CommandContext, parseCommandArgs } from "./context.ts";
import { errorLine } from "./errors.ts";
import { jobJson } from "./format.ts";

/** Runs `cumulus kill`: exit 0 when every job was cancelled, else 1. */
export async function killCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("kill", argv, [], ctx);
  if (args.help) return 0;
  if (args.positionals.length === 0) {
    throw new UsageError("kill needs at least one job id (cumulus kill JOB...)");
  }
  const client = clientFor(ctx, args.url);
  const cancelled: JobRecord[] = [];
  let failed = false;
  try {
    if (args.positionals.length === 1) {
      // One job: its error is the command's error (one line, exit 1).
      cancelled.push(await client.job(args.positionals[0]).cancel());
    } else {
      for (const id of args.positionals) {
        try {
          cancelled.push(await client.job(id).cancel());
        } catch (err) {
          failed = true;
          await ctx.io.stderr.write(errorLine(err) + "\n");
        }
      }
    }
  } finally {
    client.close();
  }
  if (args.json) {
    await ctx.io.stdout.write(JSON.stringify(cancelled.map(jobJson), null, 2) + "\n");
  } else {
    await ctx.io.stdout.write(cancelled.map((j) => `${j.id} ${j.state}\n`).join(""));
  }
  return failed ? 1 : 0;
}
