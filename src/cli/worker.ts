/**
 * `cumulus worker add|drain|remove`: workers that join with one command
 * (admin calls, see docs/workers.md "Adding a worker").
 * @module
 */
import { boolFlag, parseDuration, stringFlag, UsageError } from "./args.ts";
import { clientFor, type CommandContext, parseCommandArgs } from "./context.ts";

const FLAGS = [
  { name: "expires", type: "string" as const },
  { name: "now", type: "boolean" as const },
];

/** Runs `cumulus worker SUBCOMMAND`. */
export async function workerCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("worker", argv, FLAGS, ctx);
  if (args.help) return 0;
  const [sub, ...rest] = args.positionals;
  const out = (text: string) => ctx.io.stdout.write(text);
  const json = (v: unknown) => out(JSON.stringify(v, null, 2) + "\n");
  if (sub === "add") {
    if (rest.length !== 0) throw new UsageError("worker add takes no arguments");
    const expires = stringFlag(args.flags, "expires");
    const expiresS = expires === undefined ? 0 : parseDuration("expires", expires);
    const client = clientFor(ctx, args.url);
    try {
      const t = await client.createJoinToken({ expiresS });
      if (args.json) {
        await json({
          command: t.command,
          token: t.token,
          expires_at: new Date(t.expiresAtMs).toISOString(),
          ca_fingerprint: t.caFingerprint || null,
        });
      } else {
        // The line alone on stdout (scripts capture it); the rest on stderr.
        await ctx.io.stderr.write(
          `run this as root on the new machine (single use, expires ${
            new Date(t.expiresAtMs).toISOString()
          }; keep it secret):\n`,
        );
        await out(t.command + "\n");
      }
    } finally {
      client.close();
    }
    return 0;
  }
  if (sub === "drain" || sub === "remove") {
    if (rest.length !== 1) throw new UsageError(`worker ${sub} needs one worker name`);
    const client = clientFor(ctx, args.url);
    try {
      const now = boolFlag(args.flags, "now");
      const nodeId = sub === "drain"
        ? await client.drainWorker(rest[0], { now })
        : await client.removeWorker(rest[0]);
      if (args.json) await json({ name: rest[0], node_id: nodeId || null });
      else if (sub === "drain") {
        await out(
          `${rest[0]} draining${nodeId ? ` (node ${nodeId})` : ""}: ${
            now ? "its jobs resume elsewhere" : "no new jobs, running ones finish"
          }\n`,
        );
      } else await out(`${rest[0]} removed${nodeId ? ` (node ${nodeId})` : ""}\n`);
    } finally {
      client.close();
    }
    return 0;
  }
  throw new UsageError(
    `worker needs a subcommand: add, drain or remove, got ${JSON.stringify(sub ?? "")}`,
  );
}
