/**
 * `cumulus version`.
 * @module
 */
import { UsageError } from "./args.ts";
import { type CommandContext, parseCommandArgs } from "./context.ts";

/** The version of the CLI and SDK. */
export const CUMULUS_VERSION = "0.1.0";

/** Runs `cumulus version`. */
export async function versionCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("version", argv, [], ctx);
  if (args.help) return 0;
  if (args.positionals.length > 0) {
    throw new UsageError(`version takes no arguments, got ${JSON.stringify(args.positionals[0])}`);
  }
  const info = { version: CUMULUS_VERSION, ...Deno.version };
  await ctx.io.stdout.write(
    args.json
      ? JSON.stringify(info) + "\n"
      : `cumulus ${info.version} (deno ${info.deno}, v8 ${info.v8}, typescript ${info.typescript})\n`,
  );
  return 0;
}
