/**
 * `cumulus token create|list|revoke`: user tokens (admin calls, see
 * docs/operations.md "Tokens").
 * @module
 */
import type { TokenInfo } from "../sdk/mod.ts";
import { boolFlag, parseDuration, stringFlag, UsageError } from "./args.ts";
import { clientFor, type CommandContext, parseCommandArgs } from "./context.ts";
import { formatAge, formatTable } from "./format.ts";

const FLAGS = [
  { name: "admin", type: "boolean" as const },
  { name: "expires", type: "string" as const },
];

function tokenJson(t: TokenInfo): Record<string, unknown> {
  const iso = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : null);
  return {
    id: t.id,
    user: t.user,
    admin: t.admin,
    created_at: iso(t.createdAtMs),
    expires_at: iso(t.expiresAtMs),
    revoked_at: iso(t.revokedAtMs),
  };
}

function status(t: TokenInfo, now: number): string {
  if (t.revokedAtMs > 0) return "revoked";
  if (t.expiresAtMs > 0 && t.expiresAtMs <= now) return "expired";
  if (t.expiresAtMs > 0) return `expires in ${formatAge(t.expiresAtMs - now)}`;
  return "active";
}

/** Runs `cumulus token SUBCOMMAND`. */
export async function tokenCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("token", argv, FLAGS, ctx);
  if (args.help) return 0;
  const [sub, ...rest] = args.positionals;
  const out = (text: string) => ctx.io.stdout.write(text);
  if (sub === "create") {
    if (rest.length !== 1) {
      throw new UsageError("token create needs one user name (cumulus token create USER)");
    }
    const expires = stringFlag(args.flags, "expires");
    const expiresInS = expires === undefined ? 0 : parseDuration("expires", expires);
    const client = clientFor(ctx, args.url);
    try {
      const { token, secret } = await client.createToken(rest[0], {
        admin: boolFlag(args.flags, "admin"),
        expiresInS,
      });
      if (args.json) {
        await out(JSON.stringify({ ...tokenJson(token), token: secret }, null, 2) + "\n");
      } else {
        // The secret on stdout alone (scripts capture it); the rest on stderr.
        await ctx.io.stderr.write(
          `token ${token.id} for ${token.user}${token.admin ? " (admin)" : ""}` +
            `${
              token.expiresAtMs > 0 ? `, expires ${new Date(token.expiresAtMs).toISOString()}` : ""
            }` +
            ": shown once, keep it secret\n",
        );
        await out(secret + "\n");
      }
    } finally {
      client.close();
    }
    return 0;
  }
  if (sub === "list") {
    if (rest.length !== 0) throw new UsageError("token list takes no arguments");
    const client = clientFor(ctx, args.url);
    try {
      const tokens = await client.listTokens();
      if (args.json) await out(JSON.stringify(tokens.map(tokenJson), null, 2) + "\n");
      else {
        const now = ctx.io.now();
        await out(formatTable(
          ["ID", "USER", "ADMIN", "CREATED", "STATUS"],
          tokens.map((t) => [
            t.id,
            t.user,
            t.admin ? "yes" : "no",
            `${formatAge(now - t.createdAtMs)} ago`,
            status(t, now),
          ]),
        ));
      }
    } finally {
      client.close();
    }
    return 0;
  }
  if (sub === "revoke") {
    if (rest.length !== 1) throw new UsageError("token revoke needs a token id or a user name");
    const client = clientFor(ctx, args.url);
    try {
      const revoked = await client.revokeToken(rest[0]);
      if (args.json) await out(JSON.stringify(revoked.map(tokenJson), null, 2) + "\n");
      else await out(revoked.map((t) => `${t.id} ${t.user} revoked\n`).join(""));
    } finally {
      client.close();
    }
    return 0;
  }
  throw new UsageError(
    `token needs a subcommand: create, list or revoke, got ${JSON.stringify(sub ?? "")}`,
  );
}
