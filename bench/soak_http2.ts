/**
 * `deno task soak --duration 10m`: a bounded HTTP/2 soak against a real
 * orchestrator process, shaped like the traffic that aborted it twice
 * (issue 14 item 2; Deno's `node:http2` assertion in nghttp2's
 * `find_stream_on_goaway_func`, denoland/deno#36788):
 *
 * 1. a loop spawning a new CLI process (`main.ts jobs --json --all`) every
 *    `--cli-interval` seconds, one after the other like a shell loop: each opens
 *    an HTTP/2 session, makes one call, closes its channel (GOAWAY) and exits;
 * 2. `--python-clients` Python grpcio SDK clients (`cumulus.CumulusClient`) that
 *    call, idle `--idle-min`..`--idle-max` seconds, call again, and now and then
 *    close their channel and open a new one;
 * 3. long WatchJob streams: `--watchers` CLI `logs -f` processes, each SIGKILLed
 *    mid-stream after a random 10..`--kill-max` seconds and started again, and
 *    one Python follower per `--python-watchers`.
 *
 * The orchestrator runs as its own process (`main.ts orchestrator`); the soak
 * watches it, records an abort (exit status, signal, the assertion line of its
 * stderr), restarts it the way the supervisor would and goes on, so one run
 * counts every abort. It ends with one summary line: sessions opened, calls,
 * duration, aborts. Exit status 1 when the orchestrator aborted or stopped serving.
 * @module
 */
import { parseArgs } from "node:util";
import { parseDurationText } from "../src/core/duration.ts";
import { pause } from "../src/core/pause.ts";
import { CumulusClient } from "../src/sdk/mod.ts";
import { freePort, type OrchestratorProcess, spawnOrchestrator } from "../tests/helpers/process.ts";

/** Options of {@link runSoak}; times in seconds. */
export interface SoakOptions {
  /** How long the traffic runs. */
  durationS: number;
  /**
   * Pause between two CLI processes of the polling loop.
   * @default 1
   */
  cliIntervalS?: number;
  /**
   * Python SDK clients that call, idle and call again.
   * @default 3
   */
  pythonClients?: number;
  /**
   * Shortest idle gap of a Python client.
   * @default 30
   */
  idleMinS?: number;
  /**
   * Longest idle gap of a Python client.
   * @default 120
   */
  idleMaxS?: number;
  /**
   * CLI `logs -f` streams kept open (each killed mid-stream and restarted).
   * @default 2
   */
  watchers?: number;
  /**
   * Longest life of one CLI `logs -f` stream before it is SIGKILLed.
   * @default 90
   */
  killMaxS?: number;
  /**
   * Python processes following one job's logs (a WatchJob stream) for the whole run.
   * @default 1
   */
  pythonWatchers?: number;
  /**
   * SIGTERM and restart the orchestrator this often (its shutdown sends GOAWAY on
   * every open session); 0 never does.
   * @default 0
   */
  restartEveryS?: number;
  /**
   * Extra environment for the orchestrator (e.g. a grpc-js setting under test).
   * @default {}
   */
  orchestratorEnv?: Record<string, string>;
  /**
   * Progress lines (one per abort, start and end).
   * @default nothing
   */
  log?: (line: string) => void;
}

/** One orchestrator process that ended on its own during the soak. */
export interface SoakAbort {
  /** Seconds since the soak's traffic started. */
  atS: number;
  code: number;
  signal: Deno.Signal | null;
  /** The nghttp2 assertion line of its stderr, or its last stderr line (marked as such). */
  line: string;
  /** CLI polling calls made before it, in the whole soak. */
  cliCallsBefore: number;
}

/** What a soak saw. */
export interface SoakResult {
  /** HTTP/2 sessions the clients opened (CLI processes, Python channels, watchers). */
  sessions: number;
  /** Calls made (unary calls and stream starts). */
  calls: number;
  /** Calls that failed (e.g. UNAVAILABLE while an aborted orchestrator restarted). */
  failedCalls: number;
  /** CLI polling-loop calls (`jobs --json --all`). */
  cliCalls: number;
  /** Seconds the traffic ran. */
  durationS: number;
  /** Clean restarts the soak asked for (`restartEveryS`). */
  restarts: number;
  aborts: SoakAbort[];
  /** The orchestrator answered ListJobs after the traffic stopped. */
  serving: boolean;
}

const ASSERTION = /Assertion .*failed|nghttp2_session\.c/;

/** The assertion line of a dead orchestrator's stderr, else its last line marked as such. */
function lastWords(stderr: string): string {
  const lines = stderr.trim().split("\n");
  return lines.find((l) => ASSERTION.test(l)) ??
    `no assertion line; last stderr line: ${lines.at(-1) ?? ""}`;
}

/** The Python side: one SDK client (mode "client") or one log follower (mode "watch"). */
const PY_CLIENT = `
import json, random, sys, threading, time
import cumulus
from cumulus.errors import CumulusError

url, deadline, idle_min, idle_max, jobs, mode, seed = sys.argv[1:8]
deadline = float(deadline); idle_min = float(idle_min); idle_max = float(idle_max)
jobs = jobs.split(","); rng = random.Random(int(seed))
stats = {"sessions": 0, "calls": 0, "failed": 0}

def call(fn):
    stats["calls"] += 1
    try:
        fn()
    except CumulusError:
        stats["failed"] += 1

if mode == "watch":
    client = cumulus.CumulusClient(url); stats["sessions"] += 1
    def follow():
        while time.time() < deadline:
            stats["calls"] += 1
            try:
                for _ in client.job(jobs[0]).logs(follow=True):
                    if time.time() >= deadline:
                        return
            except CumulusError:
                stats["failed"] += 1
                time.sleep(1)
    t = threading.Thread(target=follow, daemon=True); t.start()
    t.join(max(0.0, deadline - time.time()))
else:
    client = None
    while time.time() < deadline:
        if client is None:
            client = cumulus.CumulusClient(url); stats["sessions"] += 1
        for j in jobs:
            call(lambda: client.job(j).info())
        call(lambda: list(client.job(rng.choice(jobs)).logs(follow=False, after_seq=0))[-1:])
        time.sleep(max(0.0, min(rng.uniform(idle_min, idle_max), deadline - time.time())))
        if rng.random() < 0.3:
            client.close(); client = None
    if client is not None:
        client.close()
print(json.dumps(stats), flush=True)
sys.stdout.flush()
import os; os._exit(0)
`;

function cli(args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  });
}

/** The orchestrator under test, restarted (same port and data) when it ends on its own. */
class Orchestrator {
  proc: OrchestratorProcess | null = null;
  readonly aborts: SoakAbort[] = [];
  restarts = 0;
  #stopping = false;
  #watch: Promise<void> = Promise.resolve();

  constructor(
    readonly dataDir: string,
    readonly port: number,
    readonly env: Record<string, string>,
    readonly clock: () => { atS: number; cliCalls: number },
    readonly log: (line: string) => void,
  ) {}

  get url(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const proc = await spawnOrchestrator(this.dataDir, this.port, this.env);
    this.proc = proc;
    this.#watch = proc.status.then(async (st) => {
      if (this.#stopping) return;
      const line = lastWords(proc.stderr());
      const { atS, cliCalls } = this.clock();
      this.aborts.push({ atS, code: st.code, signal: st.signal, line, cliCallsBefore: cliCalls });
      this.log(
        `soak: orchestrator ended at ${atS.toFixed(0)} s after ${cliCalls} CLI calls: ` +
          `code ${st.code} signal ${st.signal}: ${line}`,
      );
      await this.start();
    });
  }

  /**
   * SIGTERMs it (the server sends GOAWAY on every session, idle ones included)
   * and starts it again; an exit other than 0 while shutting down counts as an abort.
   */
  async restart(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.#stopping = true;
    try {
      proc.child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    const st = await proc.status;
    await this.#watch;
    this.restarts++;
    if (!st.success) {
      const line = lastWords(proc.stderr());
      const { atS, cliCalls } = this.clock();
      this.aborts.push({ atS, code: st.code, signal: st.signal, line, cliCallsBefore: cliCalls });
      this.log(`soak: orchestrator failed its shutdown at ${atS.toFixed(0)} s: ${line}`);
    }
    this.#stopping = false;
    await this.start();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    const proc = this.proc;
    if (!proc) return;
    try {
      proc.child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await proc.status;
    await this.#watch;
  }
}

async function pythonProcess(
  url: string,
  deadlineMs: number,
  o: Required<Pick<SoakOptions, "idleMinS" | "idleMaxS">>,
  jobs: string[],
  mode: "client" | "watch",
  seed: number,
): Promise<{ sessions: number; calls: number; failed: number }> {
  const out = await new Deno.Command("/usr/bin/python3", {
    args: [
      "-c",
      PY_CLIENT,
      url,
      String(deadlineMs / 1000),
      String(o.idleMinS),
      String(o.idleMaxS),
      jobs.join(","),
      mode,
      String(seed),
    ],
    env: { PYTHONPATH: `${Deno.cwd()}/src/sdk/python` },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(
      `python ${mode}: no summary, got ${JSON.stringify(text)}; stderr: ${
        new TextDecoder().decode(out.stderr).slice(-500)
      }`,
    );
  }
}

/**
 * Runs one soak: starts an orchestrator process on a free loopback port with a
 * fresh data dir, submits three long log-printing jobs, drives the traffic for
 * `durationS`, cancels the jobs and stops the orchestrator.
 * @param options what to run and for how long
 * @returns counts, the aborts seen and whether the orchestrator was still serving
 * @throws Error when the orchestrator cannot be started or the jobs cannot be submitted
 */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const o = {
    cliIntervalS: 1,
    pythonClients: 3,
    idleMinS: 30,
    idleMaxS: 120,
    watchers: 2,
    killMaxS: 90,
    pythonWatchers: 1,
    restartEveryS: 0,
    orchestratorEnv: {},
    log: () => {},
    ...options,
  };
  const dataDir = await Deno.makeTempDir({ prefix: "cumulus-soak-" });
  let t0 = 0;
  let cliCalls = 0;
  const orch = new Orchestrator(
    dataDir,
    freePort(),
    o.orchestratorEnv,
    () => ({ atS: t0 ? (Date.now() - t0) / 1000 : 0, cliCalls }),
    o.log,
  );
  await orch.start();
  const jobIds: string[] = [];
  let sessions = 0;
  let calls = 0;
  let failedCalls = 0;
  let serving = false;
  try {
    // One short-lived SDK client for setup: the soak process itself keeps no
    // HTTP/2 session open during the traffic.
    const setup = new CumulusClient(orch.url);
    try {
      for (let i = 0; i < 3; i++) {
        const job = await setup.submit({
          command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo soak line $i; sleep 1; done"],
          gpuMemory: 0.1,
          duration: o.durationS + 600,
          name: `soak-${i}`,
        });
        jobIds.push(job.id);
      }
    } finally {
      setup.close();
    }
    o.log(`soak: orchestrator ${orch.url}, jobs ${jobIds.join(" ")}, ${o.durationS} s of traffic`);
    t0 = Date.now();
    const deadline = t0 + o.durationS * 1000;
    const stop = new AbortController();
    const stopTimer = setTimeout(() => stop.abort(), o.durationS * 1000);
    const loops: Promise<void>[] = [];
    // 1. The 1/s polling loop: a new CLI process (a new session, closed on exit) each call.
    loops.push((async () => {
      while (!stop.signal.aborted) {
        const st = await cli(["jobs", "--json", "--all", "--url", orch.url]).output();
        sessions++;
        calls++;
        cliCalls++;
        if (!st.success) failedCalls++;
        await pause(o.cliIntervalS * 1000, stop.signal);
      }
    })());
    // 3. CLI log followers, SIGKILLed mid-stream and started again.
    for (let w = 0; w < o.watchers; w++) {
      loops.push((async () => {
        let n = 0;
        while (!stop.signal.aborted) {
          const child = cli(["logs", "-f", jobIds[(w + n++) % jobIds.length], "--url", orch.url])
            .spawn();
          sessions++;
          calls++;
          await pause((10 + Math.random() * Math.max(0, o.killMaxS - 10)) * 1000, stop.signal);
          try {
            child.kill("SIGKILL");
          } catch {
            // It ended by itself (e.g. while the orchestrator restarted).
          }
          await child.status;
        }
      })());
    }
    // GOAWAY from the server's side: clean restarts while clients idle or stream.
    if (o.restartEveryS > 0) {
      loops.push((async () => {
        while (!stop.signal.aborted) {
          await pause(o.restartEveryS * 1000, stop.signal);
          if (!stop.signal.aborted) await orch.restart();
        }
      })());
    }
    // 2. Python SDK clients and followers, bounded by the deadline themselves.
    const py: Promise<{ sessions: number; calls: number; failed: number }>[] = [];
    for (let p = 0; p < o.pythonClients; p++) {
      py.push(pythonProcess(orch.url, deadline, o, jobIds, "client", p + 1));
    }
    for (let p = 0; p < o.pythonWatchers; p++) {
      py.push(pythonProcess(orch.url, deadline, o, jobIds.slice(p % jobIds.length), "watch", 0));
    }
    try {
      await Promise.all(loops);
      for (const r of await Promise.all(py)) {
        sessions += r.sessions;
        calls += r.calls;
        failedCalls += r.failed;
      }
    } finally {
      clearTimeout(stopTimer);
      stop.abort();
    }
    const durationS = (Date.now() - t0) / 1000;
    const check = new CumulusClient(orch.url);
    try {
      await check.listJobs({ pageSize: 1 });
      serving = true;
      for (const id of jobIds) await check.job(id).cancel();
    } catch {
      serving = false;
    } finally {
      check.close();
    }
    o.log(`soak: done after ${durationS.toFixed(0)} s`);
    return {
      sessions,
      calls,
      failedCalls,
      cliCalls,
      durationS,
      restarts: orch.restarts,
      aborts: orch.aborts,
      serving,
    };
  } finally {
    await orch.stop();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}

/**
 * The one summary line of a soak.
 * @example
 * formatSoakSummary(result);
 * // "soak: 612 sessions, 640 calls (0 failed, 480 CLI polls), 600 s, 0 restarts, 0 aborts, serving"
 */
export function formatSoakSummary(r: SoakResult): string {
  const aborts = r.aborts.map((a) =>
    ` [${a.atS.toFixed(0)} s, ${a.cliCallsBefore} CLI calls, signal ${a.signal ?? a.code}]`
  ).join("");
  return `soak: ${r.sessions} sessions, ${r.calls} calls (${r.failedCalls} failed, ` +
    `${r.cliCalls} CLI polls), ${r.durationS.toFixed(0)} s, ${r.restarts} restarts, ` +
    `${r.aborts.length} aborts${aborts}, ` +
    (r.serving ? "serving" : "NOT serving");
}

function seconds(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const s = parseDurationText(text);
  if (s === null) throw new Error(`${flag}: not a duration, got ${JSON.stringify(text)}`);
  return s;
}

function count(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new Error(`${flag}: not a whole number, got ${text}`);
  return Number(text);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      duration: { type: "string" },
      "cli-interval": { type: "string" },
      "python-clients": { type: "string" },
      "python-watchers": { type: "string" },
      "idle-min": { type: "string" },
      "idle-max": { type: "string" },
      watchers: { type: "string" },
      "kill-max": { type: "string" },
      "restart-every": { type: "string" },
      "orchestrator-env": { type: "string", multiple: true },
    },
    strict: true,
  });
  const env: Record<string, string> = {};
  for (const kv of values["orchestrator-env"] ?? []) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new Error(`--orchestrator-env: not KEY=VALUE, got ${kv}`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const result = await runSoak({
    durationS: seconds("--duration", values.duration, 600),
    cliIntervalS: seconds("--cli-interval", values["cli-interval"], 1),
    pythonClients: count("--python-clients", values["python-clients"], 3),
    pythonWatchers: count("--python-watchers", values["python-watchers"], 1),
    idleMinS: seconds("--idle-min", values["idle-min"], 30),
    idleMaxS: seconds("--idle-max", values["idle-max"], 120),
    watchers: count("--watchers", values.watchers, 2),
    killMaxS: seconds("--kill-max", values["kill-max"], 90),
    restartEveryS: seconds("--restart-every", values["restart-every"], 0),
    orchestratorEnv: env,
    log: (line) => console.error(line),
  });
  console.log(formatSoakSummary(result));
  for (const a of result.aborts) console.log(`abort: ${a.line}`);
  Deno.exit(result.aborts.length === 0 && result.serving ? 0 : 1);
}
