/**
 * `cumulus status`: what `cumulus up` left running with a data dir, since
 * when, and how often each piece crashed and was restarted by its supervisor
 * (the last crash's time, how it ended and its last log line).
 * @module
 */
import { UsageError } from "./args.ts";
import { type CommandContext, parseCommandArgs } from "./context.ts";
import { defaultUpDataDir, EMBEDDED_PIECES, EmbeddedPaths, runningPid } from "./embedded.ts";
import { formatTable } from "./format.ts";
import { type CrashRecord, readCrashes, readSupervisorState } from "./supervise.ts";

const FLAGS = [{ name: "data-dir", type: "string" as const }];

/** One piece as `cumulus status --json` reports it. */
export interface PieceStatus {
  piece: string;
  running: boolean;
  /** The supervisor's pid (the pid file's), or null. */
  pid: number | null;
  /** The supervised process's pid, or null. */
  childPid: number | null;
  /** When the supervisor started, or null. */
  since: string | null;
  /** Restarts since the supervisor started. */
  restarts: number;
  /** Every crash recorded in this data dir. */
  crashes: number;
  /** The newest crash, or null. */
  lastCrash: CrashRecord | null;
}

/** Each piece's status under `paths`. */
export async function piecesStatus(paths: EmbeddedPaths): Promise<PieceStatus[]> {
  const out: PieceStatus[] = [];
  for (const piece of [...EMBEDDED_PIECES].reverse()) {
    const pid = await runningPid(paths, piece);
    const state = pid === null ? null : await readSupervisorState(paths.runDir, piece);
    const crashes = await readCrashes(paths.runDir, piece);
    out.push({
      piece,
      running: pid !== null,
      pid,
      childPid: state?.childPid ?? null,
      since: state?.since ?? null,
      restarts: state?.restarts ?? 0,
      crashes: crashes.length,
      lastCrash: crashes.at(-1) ?? null,
    });
  }
  return out;
}

/** "killed by SIGABRT" / "exited with code 3". */
export function crashHow(c: CrashRecord): string {
  return c.signal ? `killed by ${c.signal}` : `exited with code ${c.exitCode}`;
}

/** Runs `cumulus status`. */
export async function statusCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("status", argv, FLAGS, ctx);
  if (args.help) return 0;
  if (args.positionals.length > 0) throw new UsageError("'cumulus status' takes no arguments");
  const paths = new EmbeddedPaths(
    (args.flags["data-dir"] as string | undefined) ?? defaultUpDataDir(ctx.io.env),
    ctx.io.cwd(),
  );
  const pieces = await piecesStatus(paths);
  if (args.json) {
    await ctx.io.stdout.write(JSON.stringify({ dataDir: paths.dataDir, pieces }, null, 2) + "\n");
    return 0;
  }
  const rows = pieces.map((p) => [
    p.piece,
    p.running ? "running" : "stopped",
    p.pid === null ? "-" : `${p.pid}${p.childPid ? ` (${p.childPid})` : ""}`,
    p.since ?? "-",
    String(p.restarts),
    p.lastCrash
      ? `${p.lastCrash.at} ${crashHow(p.lastCrash)}: ${p.lastCrash.lastLines.at(-1) ?? ""}`
      : "-",
  ]);
  await ctx.io.stdout.write(
    formatTable(["PIECE", "STATE", "PID (CHILD)", "SINCE", "RESTARTS", "LAST CRASH"], rows) +
      `data in ${paths.dataDir}\n`,
  );
  return 0;
}
