/**
 * `cumulus login [--token T]`: checks a user token against the orchestrator
 * (WhoAmI) and writes it to the credentials file the CLI and the SDKs read.
 * @module
 */
import { credentialsPath, writeCredentials } from "../sdk/mod.ts";
import { stringFlag, UsageError } from "./args.ts";
import { clientFor, type CommandContext, parseCommandArgs } from "./context.ts";

const FLAGS = [{ name: "token", type: "string" as const }];

/** Reads one line from stdin without echoing it on a terminal. */
async function readSecretLine(prompt: (text: string) => Promise<void>): Promise<string> {
  const tty = Deno.stdin.isTerminal();
  if (tty) {
    await prompt("token: ");
    Deno.stdin.setRaw(true);
  }
  const buf = new Uint8Array(1);
  const bytes: number[] = [];
  try {
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      const c = buf[0];
      if (c === 10 || c === 13) break;
      if (tty && c === 3) throw new UsageError("login cancelled");
      bytes.push(c);
    }
  } finally {
    if (tty) {
      Deno.stdin.setRaw(false);
      await prompt("\n");
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes)).trim();
}

/** Runs `cumulus login`. */
export async function loginCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("login", argv, FLAGS, ctx);
  if (args.help) return 0;
  if (args.positionals.length > 0) throw new UsageError("'cumulus login' takes no arguments");
  const token = stringFlag(args.flags, "token") ??
    await readSecretLine((t) => ctx.io.stderr.write(t));
  if (token === "") throw new UsageError("login needs a token (--token T, or on stdin)");
  const path = credentialsPath((n) => ctx.io.env(n));
  if (!path) throw new UsageError("login: no home directory: set CUMULUS_CREDENTIALS or HOME");
  const client = clientFor(ctx, args.url, token);
  let who;
  try {
    who = await client.whoAmI();
  } finally {
    client.close();
  }
  await writeCredentials(path, token);
  if (args.json) {
    await ctx.io.stdout.write(
      JSON.stringify({
        user: who.user,
        admin: who.admin,
        token_id: who.tokenId,
        credentials: path,
      }) +
        "\n",
    );
  } else {
    await ctx.io.stdout.write(
      `logged in as ${who.user}${who.admin ? " (admin)" : ""} (token ${who.tokenId}); ` +
        `token saved in ${path}\n`,
    );
  }
  return 0;
}
