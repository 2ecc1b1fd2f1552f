/**
 * `cumulus supervise`: keeps one of the pieces `cumulus up` starts running.
 * It runs the piece as its child and restarts it whenever it ends without
 * being asked to: at once, with a growing pause (1 s, 2 s, … 30 s) only
 * while it keeps crashing within 10 s of each start, giving up after 5 such
 * crashes in a row.
 * Each crash is recorded (time, exit code or signal, how long it ran, the
 * last lines of its log) in `<run dir>/<piece>.crashes`, one JSON line each,
 * and announced in the piece's log; `<run dir>/<piece>.supervisor.json` says
 * what runs now. SIGTERM or SIGINT stop the child, then the supervisor.
 *
 * The orchestrator needs this: Deno 2.9.6's HTTP/2 can abort the whole
 * process on a GOAWAY (denoland/deno#36788), where no JavaScript can catch
 * it. Its data is crash-only already (a restarted orchestrator reconciles
 * and re-attaches its jobs); the supervisor makes the process crash-only too.
 * Production hosts use systemd units with `Restart=always` instead
 * (docs/operations.md).
 * @module
 */
import { tail } from "./embedded.ts";

/** One crash of a supervised piece. */
export interface CrashRecord {
  /** When it ended, ISO 8601. */
  at: string;
  /** Exit code, or null when a signal ended it. */
  exitCode: number | null;
  /** The signal that ended it, e.g. "SIGABRT", or null. */
  signal: string | null;
  /** How long that run lasted, ms. */
  ranMs: number;
  /** The last lines of its log before it ended. */
  lastLines: string[];
}

/** What `<piece>.supervisor.json` holds while the supervisor runs. */
export interface SupervisorState {
  piece: string;
  /** The supervisor's pid (the one in `<piece>.pid`). */
  supervisorPid: number;
  /** The running child's pid. */
  childPid: number;
  /** When the supervisor started, ISO 8601. */
  since: string;
  /** When the current child started, ISO 8601. */
  childSince: string;
  /** Restarts so far. */
  restarts: number;
}

/** Runs shorter than this that crash count as "keeps crashing". */
export const QUICK_CRASH_MS = 10_000;
/** The longest pause between restarts. */
export const MAX_BACKOFF_MS = 30_000;
/**
 * Quick crashes in a row after which the supervisor gives up and exits with
 * the child's status (as systemd's default StartLimitBurst=5): a piece that
 * cannot start at all (bad config, port taken) is reported, not looped on.
 */
export const GIVE_UP_AFTER = 5;

/**
 * The pause before the next start, from how many crashes in a row came within
 * {@link QUICK_CRASH_MS} of their start (0 when the run that just ended lasted):
 * none for the first, then 1 s doubling up to {@link MAX_BACKOFF_MS}.
 * @param quickInARow Quick crashes in a row, the one that just happened included.
 * @returns The pause before the next start, ms.
 * @example
 * restartDelay(0); // 0: it ran a while, restart at once
 * restartDelay(1); // 0: the first quick crash, restart at once too
 * restartDelay(4); // 4000
 */
export function restartDelay(quickInARow: number): number {
  if (quickInARow <= 1) return 0;
  return Math.min(1000 * 2 ** (quickInARow - 2), MAX_BACKOFF_MS);
}

/** Files of a supervised piece under the run dir. */
export function supervisorFiles(runDir: string, piece: string) {
  return {
    state: `${runDir}/${piece}.supervisor.json`,
    crashes: `${runDir}/${piece}.crashes`,
    log: `${runDir}/${piece}.log`,
  };
}

/** Reads a piece's crash records, oldest first (none when the file is absent). */
export async function readCrashes(runDir: string, piece: string): Promise<CrashRecord[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(supervisorFiles(runDir, piece).crashes);
  } catch {
    return [];
  }
  const out: CrashRecord[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      out.push(JSON.parse(line) as CrashRecord);
    } catch {
      // A line cut by a crash of the supervisor itself: skipped.
    }
  }
  return out;
}

/** Reads a piece's supervisor state, or null when none runs (or the file is unreadable). */
export async function readSupervisorState(
  runDir: string,
  piece: string,
): Promise<SupervisorState | null> {
  try {
    return JSON.parse(
      await Deno.readTextFile(supervisorFiles(runDir, piece).state),
    ) as SupervisorState;
  } catch {
    return null;
  }
}

const USAGE = "usage: cumulus supervise --name PIECE --run-dir DIR -- CMD [ARG...]";

/**
 * Runs `cumulus supervise` (argv after the command name); resolves with the
 * exit code once it was asked to stop.
 */
export async function superviseCommand(argv: string[]): Promise<number> {
  const dash = argv.indexOf("--");
  const flags = dash < 0 ? argv : argv.slice(0, dash);
  const cmd = dash < 0 ? [] : argv.slice(dash + 1);
  let name = "";
  let runDir = "";
  for (let i = 0; i < flags.length; i += 2) {
    if (flags[i] === "--name") name = flags[i + 1] ?? "";
    else if (flags[i] === "--run-dir") runDir = flags[i + 1] ?? "";
    else {
      console.error(`cumulus supervise: unknown option ${JSON.stringify(flags[i])}\n${USAGE}`);
      return 2;
    }
  }
  if (!/^[a-z0-9-]{1,32}$/.test(name) || runDir === "" || cmd.length === 0) {
    console.error(`cumulus supervise: --name, --run-dir and a command are needed\n${USAGE}`);
    return 2;
  }
  const files = supervisorFiles(runDir, name);
  const since = new Date().toISOString();
  const say = (msg: string) =>
    console.error(`--- ${new Date().toISOString()} supervisor: ${name} ${msg}`);
  let stopping = false;
  let child: Deno.ChildProcess | null = null;
  let wake: (() => void) | null = null;
  const stop = (sig: Deno.Signal) => {
    stopping = true;
    try {
      child?.kill(sig);
    } catch {
      // Already gone.
    }
    wake?.();
  };
  const onTerm = () => stop("SIGTERM");
  const onInt = () => stop("SIGINT");
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  let restarts = 0;
  let quickInARow = 0;
  let last: Deno.CommandStatus | null = null;
  try {
    while (!stopping) {
      const started = Date.now();
      try {
        child = new Deno.Command(cmd[0], {
          args: cmd.slice(1),
          stdin: "null",
          stdout: "inherit",
          stderr: "inherit",
        }).spawn();
      } catch (err) {
        say(`cannot start ${JSON.stringify(cmd[0])}: ${(err as Error).message}`);
        return 1;
      }
      const state: SupervisorState = {
        piece: name,
        supervisorPid: Deno.pid,
        childPid: child.pid,
        since,
        childSince: new Date(started).toISOString(),
        restarts,
      };
      await writeAtomic(files.state, JSON.stringify(state) + "\n");
      last = await child.status;
      if (stopping) break;
      const ranMs = Date.now() - started;
      const how = last.signal ? `killed by ${last.signal}` : `exited with code ${last.code}`;
      const record: CrashRecord = {
        at: new Date().toISOString(),
        exitCode: last.signal ? null : last.code,
        signal: last.signal ?? null,
        ranMs,
        lastLines: (await tail(files.log, 8)).split("\n").filter((l) => l !== ""),
      };
      await Deno.writeTextFile(files.crashes, JSON.stringify(record) + "\n", { append: true });
      quickInARow = ranMs < QUICK_CRASH_MS ? quickInARow + 1 : 0;
      if (quickInARow >= GIVE_UP_AFTER) {
        say(
          `${how} after ${
            (ranMs / 1000).toFixed(1)
          } s, ${quickInARow} quick crashes in a row: giving up`,
        );
        break;
      }
      const delay = restartDelay(quickInARow);
      say(
        `${how} after ${(ranMs / 1000).toFixed(1)} s; restarting` +
          (delay > 0 ? ` in ${delay / 1000} s (it keeps crashing)` : "") +
          ` (restart ${restarts + 1})`,
      );
      if (delay > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = null;
      }
      restarts++;
    }
  } finally {
    Deno.removeSignalListener("SIGTERM", onTerm);
    Deno.removeSignalListener("SIGINT", onInt);
    await Deno.remove(files.state).catch(() => {});
  }
  if (!last || stopping) return 0;
  return last.signal ? 1 : last.code || 1;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}
