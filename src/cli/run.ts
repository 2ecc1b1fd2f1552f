/**
 * `cumulus run`: pack the current directory, submit a job, stream its output
 * and exit with its exit code.
 * @module
 */
import {
  DEFAULT_DURATION,
  DEFAULT_GPU_MEMORY,
  DEFAULT_MAX_BUNDLE_BYTES,
  formatBytes,
  isTerminalState,
  type Job,
  type JobRecord,
  type JobSpecInput,
  packBundle,
} from "../sdk/mod.ts";
import {
  boolFlag,
  listFlag,
  numberFlag,
  parseDuration,
  parseSize,
  positiveIntFlag,
  stringFlag,
  UsageError,
} from "./args.ts";
import { clientFor, type CommandContext, parseCommandArgs } from "./context.ts";
import { errorLine } from "./errors.ts";
import { escapeTerminal, jobJson } from "./format.ts";
import type { CliIO } from "./io.ts";
import { printLines } from "./logs.ts";
import { Progress } from "./progress.ts";

/** Exit code when the job was cancelled (as for a process ended by Ctrl-C). */
export const EXIT_CANCELLED = 130;

/** Exit code when the job's duration ran out (as `timeout(1)` does). */
export const EXIT_EXPIRED = 124;

const RUN_FLAGS = [
  { name: "image", type: "string" },
  { name: "gpu-memory", type: "string" },
  { name: "gpus", type: "string" },
  { name: "duration", type: "string" },
  { name: "env", type: "string", multiple: true },
  { name: "name", type: "string" },
  { name: "user", type: "string" },
  { name: "constraint", type: "string", multiple: true },
  { name: "workdir", type: "string" },
  { name: "no-bundle", type: "boolean" },
  { name: "detach", type: "boolean" },
  { name: "max-bundle-size", type: "string" },
  { name: "progress", type: "boolean" },
  { name: "max-attempts", type: "string" },
  { name: "resume-on-expiry", type: "boolean" },
  { name: "result-retention", type: "string" },
  { name: "cpu", type: "string" },
  { name: "memory", type: "string" },
  { name: "image-user", type: "boolean" },
] as const;

/** `cumulus run`'s options after parsing. */
export interface RunOptions {
  /** The spec to submit. */
  spec: JobSpecInput;
  /** Send the current directory. */
  bundle: boolean;
  /** Largest compressed bundle. */
  maxBundleBytes: number;
  /** Exit after submitting. */
  detach: boolean;
  /** Show progress even without a terminal. */
  progress: boolean;
}

/**
 * Parses `run`'s flags and command into a spec. Number formats are checked
 * here (usage errors); value ranges are the orchestrator's to judge, so its
 * INVALID_ARGUMENT message names the field.
 */
export function parseRunOptions(
  flags: Record<string, unknown>,
  command: string[],
  env: (name: string) => string | undefined,
): RunOptions {
  if (command.length === 0) {
    throw new UsageError("run needs a command (cumulus run [flags] -- CMD [ARG...])");
  }
  const f = flags as Parameters<typeof stringFlag>[0];
  const gpuMemoryText = stringFlag(f, "gpu-memory");
  const gpusText = stringFlag(f, "gpus");
  if (gpusText !== undefined && !/^\d+$/.test(gpusText.trim())) {
    throw new UsageError(
      `--gpus: expected a whole number of GPUs, got ${JSON.stringify(gpusText)}`,
    );
  }
  const gpuCount = gpusText === undefined ? undefined : Number(gpusText.trim());
  const durationText = stringFlag(f, "duration");
  const sizeText = stringFlag(f, "max-bundle-size");
  const attemptsText = stringFlag(f, "max-attempts");
  const retentionText = stringFlag(f, "result-retention");
  const resumeOnExpiry = boolFlag(f, "resume-on-expiry");
  const cpuText = stringFlag(f, "cpu");
  const memoryText = stringFlag(f, "memory");
  const jobEnv: Record<string, string> = {};
  for (const item of listFlag(f, "env")) {
    const eq = item.indexOf("=");
    const key = eq >= 0 ? item.slice(0, eq) : item;
    if (key === "") throw new UsageError(`--env: expected KEY=VALUE, got ${JSON.stringify(item)}`);
    if (eq >= 0) {
      jobEnv[key] = item.slice(eq + 1);
    } else {
      const local = env(key);
      if (local === undefined) {
        throw new UsageError(`--env ${key}: not set here (use --env ${key}=VALUE)`);
      }
      jobEnv[key] = local;
    }
  }
  const user = stringFlag(f, "user") ?? (nonEmpty(env("CUMULUS_USER")) ?? nonEmpty(env("USER")));
  return {
    spec: {
      image: stringFlag(f, "image") ?? "",
      command,
      env: jobEnv,
      // "0.5" is a fraction of one device; "20GiB" an absolute size, which the
      // orchestrator parses (and refuses, naming spec.gpu_memory_size, when malformed).
      ...(gpuMemoryText !== undefined && /^\s*\d+(\.\d+)?\s*[A-Za-z]+\s*$/.test(gpuMemoryText)
        ? { gpuMemorySize: gpuMemoryText.trim() }
        : gpuMemoryText === undefined
        // --gpus alone asks whole GPUs: no default fraction goes with it.
        ? (gpuCount === undefined ? { gpuMemory: DEFAULT_GPU_MEMORY } : {})
        : { gpuMemory: numberFlag("gpu-memory", gpuMemoryText) }),
      ...(gpuCount === undefined ? {} : { gpuCount }),
      duration: durationText === undefined
        ? DEFAULT_DURATION
        : parseDuration("duration", durationText),
      constraints: listFlag(f, "constraint"),
      name: stringFlag(f, "name") ?? "",
      user: user ?? "",
      workdir: stringFlag(f, "workdir") ?? "",
      // Left out unless asked for, so the orchestrator's defaults apply; the
      // orchestrator judges the values (max_attempts 1..100, resume_on_expiry
      // needs more than one attempt).
      ...(attemptsText !== undefined || resumeOnExpiry
        ? {
          retry: {
            resume: true,
            maxAttempts: attemptsText === undefined
              ? 0
              : positiveIntFlag("max-attempts", attemptsText),
            resumeOnExpiry,
          },
        }
        : {}),
      ...(retentionText === undefined
        ? {}
        : { resultRetention: parseDuration("result-retention", retentionText) }),
      // Left out unless given: the orchestrator's job_cpu_default and
      // job_memory_default apply, and it judges the maxima.
      ...(cpuText === undefined ? {} : { cpu: numberFlag("cpu", cpuText) }),
      ...(memoryText === undefined ? {} : { memory: `${parseSize("memory", memoryText)}B` }),
      ...(boolFlag(f, "image-user") ? { imageUser: true } : {}),
    },
    bundle: !boolFlag(f, "no-bundle"),
    maxBundleBytes: sizeText === undefined
      ? DEFAULT_MAX_BUNDLE_BYTES
      : parseSize("max-bundle-size", sizeText),
    detach: boolFlag(f, "detach"),
    progress: boolFlag(f, "progress"),
  };
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v && v.trim() !== "" ? v.trim() : undefined;
}

/**
 * The exit code `cumulus run` ends with for a finished job: the process's
 * code when it has one; 130 for CANCELLED, 124 for EXPIRED, 1 for a failure
 * without an exit code.
 */
export function exitCodeOfJob(job: JobRecord): number {
  switch (job.state) {
    case "CANCELLED":
      return EXIT_CANCELLED;
    case "EXPIRED":
      return EXIT_EXPIRED;
    case "SUCCEEDED":
    case "FAILED": {
      const code = job.exitCode;
      if (code === null) return job.state === "SUCCEEDED" ? 0 : 1;
      // A FAILED job that reports 0 still failed (e.g. its result upload).
      if (job.state === "FAILED" && code === 0) return 1;
      return code >= 0 && code <= 255 ? code : 1;
    }
    default:
      return 1;
  }
}

/** The stderr line explaining an ending that the job's own output may not show. */
function endingNote(job: JobRecord): string | null {
  const reason = job.reason ? `: ${escapeTerminal(job.reason)}` : "";
  switch (job.state) {
    case "CANCELLED":
      return `cumulus: job ${job.id} was cancelled${reason}`;
    case "EXPIRED":
      return `cumulus: job ${job.id} expired after its duration of ${job.spec.duration} s${reason}`;
    case "FAILED":
      return job.exitCode === null ? `cumulus: job ${job.id} failed${reason}` : null;
    default:
      return null;
  }
}

function stateText(job: JobRecord): string {
  const reason = job.reason ? ` (${escapeTerminal(job.reason)})` : "";
  switch (job.state) {
    case "QUEUED":
      return `Job ${job.id} queued, waiting for a worker${reason}`;
    case "SCHEDULED":
      return `Job ${job.id} scheduled${job.nodeId ? ` on node ${job.nodeId}` : ""}, starting`;
    case "RESUMING":
      return `Job ${job.id} resuming from its last checkpoint${reason}`;
    case "RUNNING":
      return `Job ${job.id} running`;
    default:
      return `Job ${job.id} ${job.state.toLowerCase()}`;
  }
}

/** Runs `cumulus run`. */
export async function runCommand(argv: string[], ctx: CommandContext): Promise<number> {
  const args = await parseCommandArgs("run", argv, RUN_FLAGS, ctx, { stopAtPositional: true });
  if (args.help) return 0;
  const options = parseRunOptions(args.flags, args.positionals, ctx.io.env);
  const io = ctx.io;
  const progress = new Progress(
    io.stderr,
    io.stderrIsTerminal || options.progress ? (io.stderrIsTerminal ? "tty" : "lines") : "off",
    io.now,
  );
  const client = clientFor(ctx, args.url);
  const stop = new AbortController();
  let job: Job | null = null;
  let interrupts = 0;
  const unsubscribe = io.onInterrupt(() => {
    interrupts++;
    if (job === null || interrupts > 1) {
      stop.abort(new InterruptedError());
      return;
    }
    const j = job;
    progress.note(`Cancelling job ${j.id} (Ctrl-C again to stop waiting)`);
    j.cancel().catch((err) => io.stderr.write(errorLine(err) + "\n").catch(() => {}));
  });
  try {
    let bundle: Uint8Array | undefined;
    if (options.bundle) {
      const cwd = io.cwd();
      progress.update("pack", `Packing ${cwd}`);
      const packed = await packBundle(cwd, {
        maxBytes: options.maxBundleBytes,
        signal: stop.signal,
        onProgress: (p) =>
          progress.update(
            "pack",
            `Packing ${p.files}/${plural(p.totalFiles, "file")}, ${formatBytes(p.bytesIn)}/${
              formatBytes(p.totalBytesIn)
            }`,
          ),
      });
      // An empty directory needs no bundle: the job then starts without
      // fetching one.
      bundle = packed.files + packed.directories > 0 ? packed.bytes : undefined;
      progress.update(
        "packed",
        bundle === undefined
          ? `Nothing to bundle in ${cwd}`
          : `Packed ${plural(packed.files, "file")} (${formatBytes(packed.rawBytes)}) into ${
            formatBytes(packed.bytes.length)
          }`,
      );
    }
    progress.update("upload", `Submitting to ${client.url}`);
    job = await client.submit(options.spec, {
      bundle,
      signal: stop.signal,
      onProgress: (p) =>
        progress.update(
          "upload",
          `Uploading ${formatBytes(p.sentBytes)}/${formatBytes(p.totalBytes ?? p.sentBytes)}`,
        ),
    });
    progress.flushPending();
    if (options.detach) {
      await progress.clear();
      if (args.json) {
        await io.stdout.write(JSON.stringify(jobJson(await job.status()), null, 2) + "\n");
      } else {
        await io.stdout.write(job.id + "\n");
      }
      return 0;
    }
    progress.update("submitted", `Submitted job ${job.id}, waiting for a worker`);
    const final = await follow(job, io, progress, args.json, stop.signal);
    await progress.clear();
    const note = endingNote(final);
    if (note) await io.stderr.write(note + "\n");
    if (args.json) await io.stdout.write(JSON.stringify(jobJson(final), null, 2) + "\n");
    return exitCodeOfJob(final);
  } catch (err) {
    await progress.clear();
    if (stop.signal.aborted) {
      const id = job === null ? "" : ` (job ${(job as Job).id} may still be running)`;
      await io.stderr.write(`cumulus: interrupted${id}\n`);
      return EXIT_CANCELLED;
    }
    throw err;
  } finally {
    unsubscribe();
    client.close();
  }
}

/** Streams the job's output until it ends; returns the final record. */
async function follow(
  job: Job,
  io: CliIO,
  progress: Progress,
  json: boolean,
  signal: AbortSignal,
): Promise<JobRecord> {
  let last: JobRecord | null = null;
  for await (const event of job.watch({ signal })) {
    if (event.job) {
      last = event.job;
      if (!isTerminalState(last.state)) progress.update(last.state, stateText(last));
    }
    if (event.lines.length > 0) {
      await progress.clear();
      // With --json, stdout is reserved for the final record.
      await printLines(io, event.lines, { allToStderr: json });
    }
  }
  return last && isTerminalState(last.state) ? last : await job.status();
}

/** Raised inside `run` when the user pressed Ctrl-C before a job existed or twice. */
class InterruptedError extends Error {
  /** Stable code. */
  readonly code = "CANCELLED";
  constructor() {
    super("interrupted");
    this.name = "InterruptedError";
  }
}
