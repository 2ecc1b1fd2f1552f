/**
 * `cumulus version`.
 * @module
 */
import { UsageError } from "./args.ts";
import { BUILD_COMMIT } from "./build_info.ts";
import { type CommandContext, parseCommandArgs } from "./context.ts";

/** The version of the CLI and SDK. */
export const CUMULUS_VERSION = "0.1.0";

/** Git commit of a built executable (scripts/build.sh), "dev" when run from a checkout. */
export const CUMULUS_COMMIT: string = BUILD_COMMIT;

/** Runs `cumulus version`. */
export async function versionCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("version", argv, [], ctx);
  if (args.help) return 0;
  if (args.positionals.length > 0) {
    throw new UsageError(`version takes no arguments, got ${JSON.stringify(args.positionals[0])}`);
  }
  const info = { version: CUMULUS_VERSION, commit: CUMULUS_COMMIT, ...Deno.version };
  await ctx.io.stdout.write(
    args.json
      ? JSON.stringify(info) + "\n"
      : `cumulus ${info.version} (deno ${info.deno}, v8 ${info.v8}, typescript ${info.typescript}, ` +
        `commit ${info.commit})\n`,
  );
  return 0;
}
