/**
 * The processes `cumulus up` leaves running (orchestrator, s3rver, agent
 * daemon) and `cumulus down` stops: where their pid and log files live under
 * the data dir, how they are started detached, recognised and stopped.
 * @module
 */
import { resolve } from "node:path";
import { pause } from "../core/pause.ts";

/** Default data dir of `up` and `down` run from a checkout (the orchestrator's default too). */
export const DEFAULT_UP_DATA_DIR = "./cumulus-data";

/**
 * The data dir `up`, `down` and `status` use without --data-dir. From a
 * checkout (`deno run main.ts`), `./cumulus-data`, as the quickstart says. A
 * built executable runs in any directory, so it never writes there by
 * surprise: `$XDG_DATA_HOME/cumulus`, else `~/.local/share/cumulus`.
 * @param env Variable lookup.
 * @returns The directory (relative to the working directory for the checkout's default).
 * @throws {Error} for a built executable with neither XDG_DATA_HOME nor HOME.
 */
export function defaultUpDataDir(env: (name: string) => string | undefined): string {
  if (!builtExecutable(env)) return DEFAULT_UP_DATA_DIR;
  const xdg = env("XDG_DATA_HOME")?.trim();
  if (xdg) return `${xdg}/cumulus`;
  const home = env("HOME")?.trim();
  if (home) return `${home}/.local/share/cumulus`;
  throw new Error("no data dir: set HOME or XDG_DATA_HOME, or give --data-dir");
}

/**
 * True when this is a built executable (dist/cumulus), not `deno run` from a
 * checkout: the offline build's stub names itself in CUMULUS_SELF, and a
 * compiled program's executable is not `deno`.
 */
export function builtExecutable(
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): boolean {
  return selfExecutable(env) !== null || !/(^|\/)deno$/.test(Deno.execPath());
}

/**
 * The built executable's own file, from CUMULUS_SELF (set by the offline
 * build's stub, whose Deno.execPath() is the unpacked `deno`), or null.
 */
function selfExecutable(env: (name: string) => string | undefined): string | null {
  const self = env("CUMULUS_SELF")?.trim();
  if (!self || !self.startsWith("/")) return null;
  try {
    return Deno.statSync(self).isFile ? self : null;
  } catch {
    return null;
  }
}

/** The pieces `cumulus up` starts, in the order `cumulus down` stops them. */
export const EMBEDDED_PIECES = ["agent", "orchestrator", "s3rver"] as const;

/** One of {@link EMBEDDED_PIECES}. */
export type EmbeddedPiece = typeof EMBEDDED_PIECES[number];

/**
 * A word each piece's command line contains: a pid file whose process does
 * not carry it belongs to a recycled pid, not to us.
 */
const MARKERS: Readonly<Record<EmbeddedPiece, string>> = {
  agent: "agent",
  orchestrator: "orchestrator",
  s3rver: "s3rver",
};

/** Where `cumulus up` keeps its run-time files: `<data dir>/up/`. */
export class EmbeddedPaths {
  /** The data dir (jobs, logs, checkpoints: the user's data). */
  readonly dataDir: string;
  /** `<data dir>/up`: pid files, logs of the pieces, state.json. */
  readonly runDir: string;
  /** `<data dir>/s3`: the objects s3rver stores (L2 checkpoints). */
  readonly s3Dir: string;

  /** Paths under `dataDir` (made absolute against `cwd`). */
  constructor(dataDir: string, cwd: string) {
    this.dataDir = resolve(cwd, dataDir);
    this.runDir = `${this.dataDir}/up`;
    this.s3Dir = `${this.dataDir}/s3`;
  }

  /** The pid file of a piece. */
  pidFile(piece: EmbeddedPiece): string {
    return `${this.runDir}/${piece}.pid`;
  }

  /** The log file a piece writes its stdout and stderr to. */
  logFile(piece: EmbeddedPiece): string {
    return `${this.runDir}/${piece}.log`;
  }

  /** What `up` recorded about the running pieces (ports, S3 settings). */
  get stateFile(): string {
    return `${this.runDir}/state.json`;
  }
}

/** What `cumulus up` records in state.json for the next `up` to reuse. */
export interface EmbeddedState {
  /** gRPC port of the orchestrator. */
  port: number;
  /** S3 endpoint (`http://127.0.0.1:N`), or "" when checkpoints stay local. */
  s3Endpoint: string;
  /** Bucket of L2 checkpoints ("" without S3). */
  s3Bucket: string;
  /** The orchestrator serves TLS with the certificates in `<data dir>/tls` (absent: plaintext). */
  tls?: boolean;
}

/** Reads state.json, or null when absent or unreadable. */
export async function readState(paths: EmbeddedPaths): Promise<EmbeddedState | null> {
  try {
    return JSON.parse(await Deno.readTextFile(paths.stateFile)) as EmbeddedState;
  } catch {
    return null;
  }
}

/** Writes state.json. */
export async function writeState(paths: EmbeddedPaths, state: EmbeddedState): Promise<void> {
  await Deno.mkdir(paths.runDir, { recursive: true });
  await Deno.writeTextFile(paths.stateFile, JSON.stringify(state, null, 2) + "\n");
}

/**
 * The pid of a running piece, or null when its pid file is missing or names
 * a process that is gone or is something else (a recycled pid).
 */
export async function runningPid(
  paths: EmbeddedPaths,
  piece: EmbeddedPiece,
): Promise<number | null> {
  let pid: number;
  try {
    pid = Number((await Deno.readTextFile(paths.pidFile(piece))).trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 1) return null;
  return (await commandLine(pid))?.includes(MARKERS[piece]) ? pid : null;
}

/** The command line of a live process (NUL-separated argv joined by spaces), or null. */
async function commandLine(pid: number): Promise<string | null> {
  let raw: string;
  try {
    raw = await Deno.readTextFile(`/proc/${pid}/cmdline`);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotCapable)) return null;
    // Deno lets only --allow-all read /proc; the built executable's narrowed commands
    // ask cat instead (--allow-run=cat), which reads the same bytes.
    const out = await new Deno.Command("cat", {
      args: [`/proc/${pid}/cmdline`],
      stdout: "piped",
      stderr: "null",
    }).output().catch(() => null);
    if (!out?.success) return null;
    raw = new TextDecoder().decode(out.stdout);
  }
  // A zombie has an empty command line: it is gone for our purposes.
  return raw === "" ? null : raw.split("\0").join(" ");
}

/** A process started by {@link spawnDetached}. */
export interface DetachedProcess {
  pid: number;
  /**
   * True once it exited. Checked on our own child, not through its command
   * line: right after the spawn it is still a copy of this process.
   */
  exited(): boolean;
}

/**
 * Starts `argv` detached from this process (its own session, stdin from
 * /dev/null, stdout and stderr appended to `logFile`) under `cumulus
 * supervise`, which restarts it when it crashes (src/cli/supervise.ts), and
 * records the supervisor's pid in the piece's pid file. Both outlive
 * `cumulus up`.
 */
export async function spawnDetached(
  paths: EmbeddedPaths,
  piece: EmbeddedPiece,
  argv: readonly string[],
  env: Record<string, string>,
): Promise<DetachedProcess> {
  await Deno.mkdir(paths.runDir, { recursive: true });
  const log = paths.logFile(piece);
  await Deno.writeTextFile(log, `--- ${new Date().toISOString()} starting ${piece}\n`, {
    append: true,
  });
  // setsid and sh both exec, so the pid we get is the supervisor's own, and it
  // leads the process group. The log path and the argv travel as arguments,
  // never inside the script text.
  const supervised = selfArgv([
    "supervise",
    "--name",
    piece,
    "--run-dir",
    paths.runDir,
    "--",
    ...argv,
  ]);
  const child = new Deno.Command("setsid", {
    args: [
      "sh",
      "-c",
      'log="$1"; shift; exec "$@" </dev/null >>"$log" 2>&1',
      "sh",
      log,
      ...supervised,
    ],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  child.status.then(() => exited = true, () => exited = true);
  child.unref();
  await Deno.writeTextFile(paths.pidFile(piece), `${child.pid}\n`);
  return { pid: child.pid, exited: () => exited };
}

/**
 * Stops a running piece: SIGTERM to its supervisor (which stops the piece,
 * then itself), then SIGKILL to the whole process group after `graceMs`. Returns the
 * pid it stopped, or null when the piece was not running. Removes the pid
 * file either way.
 */
export async function stopPiece(
  paths: EmbeddedPaths,
  piece: EmbeddedPiece,
  graceMs = 15_000,
): Promise<number | null> {
  const pid = await runningPid(paths, piece);
  if (pid !== null) {
    signal(pid, "SIGTERM");
    const until = Date.now() + graceMs;
    while (await runningPid(paths, piece) === pid && Date.now() < until) await pause(100);
    if (await runningPid(paths, piece) === pid) {
      // The supervisor leads its process group: the piece goes with it.
      signal(-pid, "SIGKILL");
      while (await runningPid(paths, piece) === pid) await pause(50);
    }
  }
  await Deno.remove(paths.pidFile(piece)).catch(() => {});
  return pid;
}

function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/**
 * The argv that runs this same CLI again with `args`: the built executable
 * itself (whose stub gives each command its own permissions), or
 * `deno run -A <main module>` when run from source.
 */
export function selfArgv(args: readonly string[]): string[] {
  const self = selfExecutable((n) => Deno.env.get(n));
  if (self !== null) return [self, ...args];
  const exe = Deno.execPath();
  const isDeno = /(^|\/)deno$/.test(exe);
  if (!isDeno) return [exe, ...args];
  // This checkout's CLI entry, not Deno.mainModule: a test importing this module runs it too.
  return [exe, "run", "-A", "--quiet", MAIN_MODULE, ...args];
}

/** The CLI's entry module, main.ts at the checkout's root. */
const MAIN_MODULE = new URL("../../main.ts", import.meta.url).pathname;

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export async function portOpen(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/** The last `n` lines of a file ("" when it cannot be read), for error messages. */
export async function tail(path: string, n = 15): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trimEnd().split("\n").slice(-n).join("\n");
  } catch {
    return "";
  }
}
