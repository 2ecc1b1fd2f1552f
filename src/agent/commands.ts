/**
 * `cumulus-agent` commands over Chronos: `partition create|create-group|release|release-job|list|
 * stats|reap` and `gpus`, each with `--json`. The orchestrator runs them over SSH and parses the
 * JSON; people read the tables. Exit codes are Chronos's status codes (docs/chronos.md), 2 for bad
 * usage. Creating a partition on a GPU the worker can hand out also writes its grant (and starts
 * the GPU's MPS daemon when MPS enforces it) before answering; releasing removes the grant
 * (src/agent/gpu_layer.ts).
 * @module
 */
import { formatBytes } from "../core/bytes.ts";
import {
  Chronos,
  ChronosError,
  type ChronosOptions,
  type CreatedPartition,
  type Partition,
  resolveLibraryPath,
} from "./chronos.ts";
import { deviceAccess, GpuSession, inventoryOf, provisionGpus, removeGrants } from "./gpu_layer.ts";
import { grantJobId } from "./grants.ts";
import { parseDispatchCommand } from "./ssh_dispatch.ts";

/** Where a command writes and what it reads; injected so tests capture output. */
export interface AgentIo {
  /** Writes to standard output. */
  stdout(text: string): void;
  /** Writes to standard error. */
  stderr(text: string): void;
  /** Reads an environment variable. */
  env(name: string): string | undefined;
  /** libchronos.so to load instead of the default location. */
  libraryPath?: string;
  /** Standard input (for `serve --stdio`); the process's when omitted. */
  stdin?: ReadableStream<Uint8Array>;
  /** An open handle to use (and leave open) instead of opening one per command. */
  chronos?: Chronos;
  /** The GPU layer's session to reuse (one per `serve --stdio`); one per command when omitted. */
  gpu?: GpuSession;
}

const encoder = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(file.writeSync(bytes));
}

/** The process's real stdout, stderr and environment. */
export const processIo: AgentIo = {
  stdout: (text) => writeAll(Deno.stdout, text),
  stderr: (text) => writeAll(Deno.stderr, text),
  env: (name) => Deno.env.get(name),
};

/** Usage text of the agent's Chronos commands. */
export const AGENT_USAGE =
  `usage: cumulus-agent [--state-dir DIR] [--config FILE] <command> [--json]
commands:
  partition create <device> <memory> <duration_s> [--owner U] [--job J] [--compute-share P]
  partition create-group <dev[,dev...]> <memory> <duration_s> --owner U --job J [--compute-share P]
                            one partition per device, all or nothing (whole devices when several)
  partition release <partition_id>
  partition release-job <job_id>   release every partition of a job (none: still exit 0)
  partition list
  partition stats
  partition reap            reclaim expired partitions now and list them
  gpus                      devices Chronos manages (OpenCL) and the GPU each one is
  serve [--grace S] [--interval MS]   the expiry daemon (see docs/workers.md)
  serve --stdio             run commands sent as JSON lines on stdin (one SSH channel for many)
  join --orchestrator URL --token T [--ca-fingerprint FP] [--install-docker] [...]
                            make this machine a worker in one command (as root): Docker,
                            install, register, SSH key, swarm, daemon (cumulus-agent join
                            --help and docs/workers.md)
  ssh-dispatch              run the command in SSH_ORIGINAL_COMMAND (a JSON string array);
                            for the orchestrator's forced command in authorized_keys
exit codes: 0 ok, 1 internal, 2 bad arguments, 3 not found, 4 no capacity, 5 fair share,
  6 state corrupt, 7 lock timeout, 8 I/O, 9 no device/library, 10 config
`;

/** A malformed command line: INVALID_ARGUMENT, exit code 2. */
class UsageError extends ChronosError {
  constructor(message: string) {
    super(2, message);
    this.name = "UsageError";
  }
}

interface ParsedArgs {
  words: string[];
  json: boolean;
  stdio: boolean;
  help: boolean;
  flags: Map<string, string>;
}

const VALUE_FLAGS = new Set([
  "--owner",
  "--job",
  "--compute-share",
  "--state-dir",
  "--config",
  "--grace",
  "--interval",
]);
const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseArgs(argv: string[]): ParsedArgs {
  const out: ParsedArgs = {
    words: [],
    json: false,
    stdio: false,
    help: false,
    flags: new Map(),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") out.json = true;
    else if (a === "--stdio") out.stdio = true;
    else if (a === "--help" || a === "-h") out.help = true;
    else if (VALUE_FLAGS.has(a)) {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      out.flags.set(a, argv[++i]);
    } else if (a.startsWith("--")) throw new UsageError(`unknown option '${a}'`);
    else out.words.push(a);
  }
  return out;
}

function parseNumber(text: string, what: string, range: string): number {
  if (!NUMBER_RE.test(text)) {
    throw new UsageError(`${what} must be a number ${range}, got '${text}'`);
  }
  return Number(text);
}

function parseDevice(text: string): number {
  if (!/^\d{1,6}$/.test(text)) {
    throw new UsageError(`device must be a non-negative integer index, got '${text}'`);
  }
  return Number(text);
}

/** Most devices one group may hold (a job asks 1..8 whole GPUs). */
const MAX_GROUP_DEVICES = 8;

function parseDeviceList(text: string): number[] {
  const devices = text.split(",").map((d) => parseDevice(d));
  if (devices.length > MAX_GROUP_DEVICES) {
    throw new UsageError(`devices: at most ${MAX_GROUP_DEVICES} per group, got ${devices.length}`);
  }
  if (new Set(devices).size !== devices.length) {
    throw new UsageError(`devices: each device at most once, got '${text}'`);
  }
  return devices;
}

function parseComputeShare(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,3}$/.test(text) || Number(text) < 1 || Number(text) > 100) {
    throw new UsageError(`--compute-share must be an integer percentage in 1..100, got '${text}'`);
  }
  return Number(text);
}

/** Chronos job id of member `k` of a group of `count`: `J:g<k>`, or plain `J` alone. */
function memberJobId(jobId: string, k: number, count: number): string {
  return count > 1 ? `${jobId}:g${k}` : jobId;
}

function expectArgs(words: string[], n: number, shape: string): void {
  if (words.length !== n) {
    throw new UsageError(`'${words.slice(0, 2).join(" ")}' takes ${shape}`);
  }
}

function fmtDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}h${pad(m)}m${pad(s % 60)}s` : `${m}m${pad(s % 60)}s`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd())
    .join("\n") + "\n";
}

function partitionRows(partitions: Partition[]): string {
  if (partitions.length === 0) return "no live partitions\n";
  return table([
    ["ID", "DEV", "MEMORY", "OWNER", "JOB", "REMAINING"],
    ...partitions.map((p) => [
      p.id,
      String(p.device),
      String(p.memory),
      p.owner,
      p.jobId || "-",
      fmtDuration(p.remainingS),
    ]),
  ]);
}

/**
 * Releases every live partition of `jobId` (its own and its group members' `jobId:g<k>`) and
 * returns them. Safe against concurrent callers: a partition someone else released (or that
 * expired) in between is skipped, not an error.
 */
export async function releaseJob(chronos: Chronos, jobId: string): Promise<Partition[]> {
  const { partitions } = await chronos.list();
  const released: Partition[] = [];
  for (const p of partitions) {
    if (p.jobId === "" || grantJobId(p.jobId) !== jobId) continue;
    try {
      released.push(await chronos.release(p.id));
    } catch (err) {
      if (!(err instanceof ChronosError && err.chronosCode === "NOT_FOUND")) throw err;
    }
  }
  return released;
}

function json(value: unknown): string {
  return JSON.stringify(value) + "\n";
}

/**
 * Undoes a failed create: removes the grants written and releases the partitions this call made
 * (not those the job already held), then rethrows `cause`, naming anything that could not be
 * undone.
 */
async function undoCreate(
  c: Chronos,
  gpu: GpuSession,
  made: Partition[],
  cause: unknown,
): Promise<never> {
  const left: string[] = [];
  for (const p of made) {
    try {
      await c.release(p.id);
    } catch (err) {
      if (!(err instanceof ChronosError && err.chronosCode === "NOT_FOUND")) {
        left.push(`${p.id} (${(err as Error).message})`);
      }
    }
    try {
      await removeGrants(gpu.settings().grantsDir, [p.id]);
    } catch (err) {
      left.push(`the grant of ${p.id} (${(err as Error).message})`);
    }
  }
  if (left.length === 0 || !(cause instanceof ChronosError)) throw cause;
  throw new ChronosError(
    cause.status,
    `${cause.message}; undoing failed for ${left.join(", ")}`,
    cause.earliestFitMs,
  );
}

function createdLine(p: CreatedPartition): string {
  return `${p.existing ? "existing" : "created"} ${p.id} on device ${p.device}: ` +
    `${p.memory} of the device (${formatBytes(p.memoryBytes)}) for ` +
    `${fmtDuration(p.remainingS)}, owner ${p.owner}${p.jobId ? `, job ${p.jobId}` : ""}\n`;
}

function chronosOptions(args: ParsedArgs, io: AgentIo): ChronosOptions {
  const options: ChronosOptions = {
    libraryPath: io.libraryPath,
    stateDir: args.flags.get("--state-dir") ?? io.env("CHRONOS_STATE_DIR"),
    configPath: args.flags.get("--config") ?? io.env("CHRONOS_CONFIG"),
  };
  if (options.libraryPath === undefined) {
    options.libraryPath = resolveLibraryPath({
      chronosPath: io.env("CUMULUS_CHRONOS_PATH"),
      execPath: Deno.execPath(),
      exists: (p) => {
        try {
          return Deno.statSync(p).isFile;
        } catch {
          return false;
        }
      },
    });
  }
  return options;
}

async function serveCommand(args: ParsedArgs, io: AgentIo): Promise<number> {
  expectArgs(args.words, 1, "no arguments");
  if (args.stdio) {
    if (args.flags.has("--grace") || args.flags.has("--interval")) {
      throw new UsageError("--stdio takes no --grace or --interval");
    }
    const { serveStdio } = await import("./stdio.ts");
    // One handle for the session: OpenCL discovery (~40 ms with PoCL) happens once; so does
    // reading the host's GPUs.
    const chronos = io.chronos ?? Chronos.open(chronosOptions(args, io));
    try {
      return await serveStdio(
        io.stdin ?? Deno.stdin.readable,
        io.stdout,
        { ...io, chronos, gpu: io.gpu ?? new GpuSession(io.env) },
        runAgentCommand,
      );
    } finally {
      if (io.chronos === undefined) chronos.close();
    }
  }
  const graceS = parseNumber(args.flags.get("--grace") ?? "10", "--grace", "of seconds >= 0");
  const intervalMs = parseNumber(args.flags.get("--interval") ?? "500", "--interval", "of ms > 0");
  if (graceS < 0) throw new UsageError(`--grace must be >= 0, got ${graceS}`);
  if (!(intervalMs > 0)) throw new UsageError(`--interval must be > 0, got ${intervalMs}`);
  const { serve } = await import("./serve.ts");
  return await serve({
    graceS,
    intervalMs,
    chronos: chronosOptions(args, io),
    dockerHost: io.env("DOCKER_HOST") || "/var/run/docker.sock",
    gpu: io.gpu ?? new GpuSession(io.env),
    log: (line) => io.stdout(`${new Date().toISOString()} ${line}\n`),
  });
}

async function dispatch(args: ParsedArgs, io: AgentIo): Promise<number> {
  const [group, action] = args.words;
  if (group !== "serve" && (args.flags.has("--grace") || args.flags.has("--interval"))) {
    throw new UsageError("--grace and --interval only apply to 'serve'");
  }
  if (group !== "serve" && args.stdio) throw new UsageError("--stdio only applies to 'serve'");
  if (group === "serve") return await serveCommand(args, io);
  // Validate the whole command line before loading the library or touching state.
  let run: (chronos: Chronos) => Promise<string>;
  const gpu = io.gpu ?? new GpuSession(io.env);
  gpu.settings(); // malformed GPU settings fail before anything is made
  const computeShare = parseComputeShare(args.flags.get("--compute-share"));
  if (group === "gpus") {
    expectArgs(args.words, 1, "no arguments");
    run = async (c) => {
      const view = await gpu.view(() => c.devices());
      const inventory = inventoryOf(view);
      if (args.json) return json(inventory);
      return table([
        ["DEV", "TYPE", "NAME", "MEMORY", "PLATFORM", "UUID", "ACCESS"],
        ...inventory.devices.map((d) => [
          String(d.index),
          d.type,
          d.name,
          formatBytes(d.totalMemoryBytes),
          d.platform,
          d.gpu?.uuid || "-",
          deviceAccess(view, d.index),
        ]),
      ]);
    };
  } else if (group === "partition" && action === "create") {
    expectArgs(args.words, 5, "<device> <memory> <duration_s>");
    const device = parseDevice(args.words[2]);
    const memory = parseNumber(args.words[3], "memory", "in (0, 1]");
    const duration = parseNumber(args.words[4], "duration", "of seconds > 0");
    const owner = args.flags.get("--owner") ?? io.env("USER") ?? "anonymous";
    const jobId = args.flags.get("--job");
    run = async (c) => {
      const p = await c.create({ device, memory, duration, owner, jobId });
      try {
        await provisionGpus(await gpu.view(() => c.devices()), [p], { computeShare });
      } catch (err) {
        await undoCreate(c, gpu, p.existing ? [] : [p], err);
      }
      return args.json ? json(p) : createdLine(p);
    };
  } else if (group === "partition" && action === "create-group") {
    expectArgs(args.words, 5, "<dev[,dev...]> <memory> <duration_s>");
    const devices = parseDeviceList(args.words[2]);
    const memory = parseNumber(args.words[3], "memory", "in (0, 1]");
    const duration = parseNumber(args.words[4], "duration", "of seconds > 0");
    const owner = args.flags.get("--owner");
    const jobId = args.flags.get("--job");
    if (owner === undefined || jobId === undefined) {
      throw new UsageError("'partition create-group' needs --owner and --job");
    }
    if (devices.length > 1 && memory !== 1) {
      // One MPS pipe directory per process: several devices can only be whole devices.
      throw new UsageError(
        `memory: a group of several devices takes whole devices (1), got ${memory}`,
      );
    }
    run = async (c) => {
      const partitions: CreatedPartition[] = [];
      try {
        for (const [k, device] of devices.entries()) {
          const id = memberJobId(jobId, k, devices.length);
          partitions.push(await c.create({ device, memory, duration, owner, jobId: id }));
        }
        await provisionGpus(await gpu.view(() => c.devices()), partitions, { computeShare });
      } catch (err) {
        await undoCreate(c, gpu, partitions.filter((p) => !p.existing), err);
      }
      return args.json ? json({ partitions }) : partitions.map(createdLine).join("");
    };
  } else if (group === "partition" && action === "release") {
    expectArgs(args.words, 3, "<partition_id>");
    const id = args.words[2];
    run = async (c) => {
      let p: Partition;
      try {
        p = await c.release(id);
      } catch (err) {
        // Gone already (released or expired): its grant, if any, is stale.
        if (err instanceof ChronosError && err.chronosCode === "NOT_FOUND") {
          await removeGrants(gpu.settings().grantsDir, [id]);
        }
        throw err;
      }
      await removeGrants(gpu.settings().grantsDir, [p.id]);
      return args.json ? json(p) : `released ${p.id} (device ${p.device}, ${p.memory})\n`;
    };
  } else if (group === "partition" && action === "release-job") {
    expectArgs(args.words, 3, "<job_id>");
    const jobId = args.words[2];
    run = async (c) => {
      const released = await releaseJob(c, jobId);
      await removeGrants(gpu.settings().grantsDir, released.map((p) => p.id));
      if (args.json) return json({ released });
      return released.length === 0
        ? `no live partition for job ${jobId}\n`
        : released.map((p) => `released ${p.id} (device ${p.device}, ${p.memory})\n`).join("");
    };
  } else if (group === "partition" && (action === "list" || action === "reap")) {
    expectArgs(args.words, 2, "no arguments");
    run = async (c) => {
      const l = action === "list" ? await c.list() : await c.reap();
      if (action === "reap") {
        await removeGrants(gpu.settings().grantsDir, l.partitions.map((p) => p.id));
      }
      if (args.json) return json(l);
      return action === "list"
        ? partitionRows(l.partitions)
        : `reclaimed ${l.partitions.length} expired partition(s)\n`;
    };
  } else if (group === "partition" && action === "stats") {
    expectArgs(args.words, 2, "no arguments");
    run = async (c) => {
      const s = await c.stats();
      if (args.json) return json(s);
      return `Chronos ${s.version}  state: ${s.stateDir}  max share per owner: ` +
        `${s.policy.maxSharePerOwner}\n` + table([
          ["DEV", "TYPE", "NAME", "TOTAL", "ALLOCATED", "FREE", "PARTITIONS"],
          ...s.devices.map((d) => [
            String(d.index),
            d.type,
            d.name,
            formatBytes(d.totalMemoryBytes),
            String(d.allocated),
            String(d.free),
            String(d.partitions),
          ]),
        ]);
    };
  } else if (group === "partition") {
    throw new UsageError(
      action === undefined
        ? "'partition' needs a subcommand: create, create-group, release, release-job, list, " +
          "stats or reap"
        : `unknown partition command '${action}'`,
    );
  } else {
    throw new UsageError(group === undefined ? "no command given" : `unknown command '${group}'`);
  }
  if (group !== "partition" || (action !== "create" && action !== "create-group")) {
    if (args.flags.has("--owner") || args.flags.has("--job") || computeShare !== undefined) {
      throw new UsageError(
        "--owner, --job and --compute-share only apply to 'partition create' and 'create-group'",
      );
    }
  }

  const chronos = io.chronos ?? Chronos.open(chronosOptions(args, io));
  try {
    io.stdout(await run(chronos));
    return 0;
  } finally {
    if (io.chronos === undefined) chronos.close();
  }
}

/**
 * Runs one agent command line and returns its exit code; never throws for expected failures.
 * @example
 * const code = await runAgentCommand(["partition", "list", "--json"]);
 */
export async function runAgentCommand(argv: string[], io: AgentIo = processIo): Promise<number> {
  let args: ParsedArgs | undefined;
  try {
    if (argv[0] === "join") {
      // Loaded on use: the gRPC client is needed by no other command.
      const { joinCommand } = await import("./join.ts");
      return await joinCommand(argv.slice(1), io);
    }
    if (argv[0] === "ssh-dispatch") {
      if (argv.length !== 1) throw new UsageError("'ssh-dispatch' takes no arguments");
      return await runAgentCommand(parseDispatchCommand(io.env("SSH_ORIGINAL_COMMAND")), io);
    }
    args = parseArgs(argv);
    if (args.help || args.words[0] === "help") {
      io.stdout(AGENT_USAGE);
      return 0;
    }
    return await dispatch(args, io);
  } catch (err) {
    const asJson = args?.json ?? argv.includes("--json");
    if (err instanceof ChronosError) {
      const hint = err instanceof UsageError ? " (see cumulus-agent --help)" : "";
      io.stderr(`cumulus-agent: ${err.message}${hint}\n`);
      if (asJson) {
        io.stdout(json({
          error: {
            code: err.chronosCode,
            status: err.status,
            message: err.message,
            ...(err.earliestFitMs === null ? {} : { earliestFitMs: err.earliestFitMs }),
          },
        }));
      }
      return err.status;
    }
    io.stderr(`cumulus-agent: internal error: ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}
