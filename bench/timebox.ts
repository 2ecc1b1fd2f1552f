/**
 * Time-boxing and resume latency (issue 14, item 6), on the real Swarm engine:
 * - precision: jobs with `duration` 5 s and 10 s that ignore SIGTERM and sleep
 *   on; Docker's own container events (kill with its signal, die) give when
 *   the job was signalled and when it stopped, against its partition's
 *   deadline plus the stop grace period (`stop_grace_period`, default 10 s);
 *   once with the node's agent daemon (`cumulus-agent serve`) and once with
 *   only the orchestrator's backstop;
 * - failure → resumed: a checkpointing PyTorch job whose container is removed
 *   mid-run; time from the removal to the job RUNNING again and to its first
 *   line saying it restored the checkpoint.
 *
 * Run alone: `deno run -A bench/timebox.ts [--jobs N] [--repeats N]` (prints
 * the Markdown section); `deno task bench timebox`.
 * @module
 */
import { packBundle } from "../src/sdk/mod.ts";
import { startTestDaemon, testAgent } from "../tests/helpers/agent.ts";
import { spec, TestClient, waitFor, type WireJob } from "../tests/helpers/client.ts";
import { startS3 } from "../tests/helpers/s3.ts";
import { startStack, SWARM_SOCKET } from "../tests/helpers/stack.ts";
import { parseIntFlags } from "./flags.ts";
import { fmt, quantile } from "./stats.ts";

/** Options of {@link runTimeboxBench}. */
export type TimeboxOptions = {
  /** Jobs per expiry path, half with a 5 s and half with a 10 s duration. @default 6 */
  jobs: number;
  /** Container removals in the resume measurement. @default 5 */
  repeats: number;
  /** The stop grace period in seconds (the documented default). @default 10 */
  graceS: number;
};

/** Defaults of the time-boxing bench. */
export const DEFAULT_TIMEBOX_OPTIONS: TimeboxOptions = { jobs: 6, repeats: 5, graceS: 10 };

/**
 * Parses the bench's flags (`--jobs N`, `--repeats N`, also `--name=N`; the other
 * options too) over the defaults.
 * @throws {BenchFlagError} on an unknown flag or a value that is not a positive integer
 */
export function parseTimeboxFlags(args: readonly string[]): TimeboxOptions {
  return parseIntFlags(args, DEFAULT_TIMEBOX_OPTIONS);
}

/** What Docker reported for one job's container, epoch ms. */
interface Stopped {
  term?: number;
  kill?: number;
  die?: number;
}

/**
 * Follows Docker's container kill/die events for services named
 * `cumulus-<job id>` until `signal` aborts.
 */
async function followStops(
  docker: import("dockerode"),
  signal: AbortSignal,
): Promise<{ byJob: Map<string, Stopped>; done: Promise<void> }> {
  const byJob = new Map<string, Stopped>();
  const stream = await docker.getEvents({
    filters: { type: ["container"], event: ["kill", "die"] },
  }) as unknown as NodeJS.ReadableStream & { destroy(): void };
  signal.addEventListener("abort", () => stream.destroy(), { once: true });
  let buf = "";
  const done = new Promise<void>((resolve) => {
    stream.on("data", (chunk: Uint8Array) => {
      buf += new TextDecoder().decode(chunk);
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const ev = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        const attrs = ev.Actor?.Attributes ?? {};
        const m = /^cumulus-(j-[0-9a-f]+)$/.exec(attrs["com.docker.swarm.service.name"] ?? "");
        if (!m) continue;
        const t = Number(ev.timeNano) / 1e6;
        const s = byJob.get(m[1]) ?? {};
        if (ev.Action === "die") s.die ??= t;
        else if (attrs.signal === "15") s.term ??= t;
        else if (attrs.signal === "9") s.kill ??= t;
        byJob.set(m[1], s);
      }
    });
    stream.on("close", resolve);
    stream.on("end", resolve);
    stream.on("error", () => resolve());
  });
  return { byJob, done };
}

interface ExpiryRow {
  duration: number;
  /** SIGTERM sent − deadline, ms (absent: never sent). */
  termLag?: number;
  /** Container died − (deadline + grace), ms. */
  overrun: number;
  /** EXPIRED recorded − deadline, ms. */
  recorded: number;
  state: string;
  reason: string;
}

/** Runs `opts.jobs` SIGTERM-ignoring jobs on one stack; with the agent daemon or without. */
async function expiryPath(opts: TimeboxOptions, withDaemon: boolean): Promise<ExpiryRow[]> {
  const ta = await testAgent();
  const daemon = withDaemon ? startTestDaemon(ta, opts.graceS, SWARM_SOCKET) : null;
  const stack = await startStack({
    maxConcurrentJobs: opts.jobs,
    env: { ...ta.env, CUMULUS_STOP_GRACE_PERIOD: String(opts.graceS) },
  });
  const c = new TestClient(stack.url);
  const events = new AbortController();
  try {
    const stops = await followStops(stack.orch.swarm.docker, events.signal);
    // `exec` keeps the ignored SIGTERM for sleep, whatever PID 1 forwards it.
    const cmd = ["sh", "-c", "trap '' TERM; exec sleep 3600"];
    const ids = await Promise.all(
      Array.from(
        { length: opts.jobs },
        (_, i) => c.submit(spec(cmd, { duration: i % 2 ? 10 : 5, gpuMemory: 0.1 })),
      ),
    );
    const bound = (opts.graceS * 2 + 30) * 1000;
    const rows: ExpiryRow[] = [];
    for (const [i, id] of ids.entries()) {
      // The deadline is set once the partition exists; a 5 s job may be over by now.
      const deadlineOf = (j: WireJob) => Number((j as WireJob & { deadlineMs: string }).deadlineMs);
      const placed = await waitFor("partition", () => c.getJob(id), (j) => deadlineOf(j) > 0);
      const deadline = deadlineOf(placed);
      const job = await waitFor(
        "ended",
        () => c.getJob(id),
        (j) => !["QUEUED", "SCHEDULED", "RUNNING"].includes(j.state),
        bound,
      );
      const s = await waitFor(
        "container died",
        () => Promise.resolve(stops.byJob.get(id)),
        (s) => s?.die !== undefined,
        bound,
      );
      rows.push({
        duration: i % 2 ? 10 : 5,
        termLag: s!.term !== undefined ? s!.term - deadline : undefined,
        overrun: s!.die! - (deadline + opts.graceS * 1000),
        recorded: Number(job.finishedAtMs) - deadline,
        state: job.state,
        reason: job.reason,
      });
      console.error(
        `timebox ${withDaemon ? "daemon" : "backstop"} ${id}: ${job.state}, SIGTERM ${
          fmt(rows.at(-1)!.termLag ?? NaN, 0)
        } ms after the deadline, died ${fmt(rows.at(-1)!.overrun, 0)} ms after deadline + grace`,
      );
    }
    return rows;
  } finally {
    events.abort();
    c.close();
    await stack.stop();
    await daemon?.stop();
    await ta.remove();
  }
}

interface ResumeRow {
  resuming: number;
  running: number;
  restored: number;
}

/** Removes a checkpointing job's container `repeats` times (one job each) and times the resume. */
async function resumeLatency(opts: TimeboxOptions): Promise<ResumeRow[]> {
  const s3 = await startS3();
  const stack = await startStack({ env: s3.orchestratorEnv });
  const c = new TestClient(stack.url);
  const fixture = new URL("../tests/fixtures/train_ckpt/", import.meta.url).pathname;
  const bundle = (await packBundle(fixture)).bytes;
  const docker = stack.orch.swarm.docker;
  const rows: ResumeRow[] = [];
  try {
    for (let r = 0; r < opts.repeats; r++) {
      const id = await c.submit(
        spec(["python3", "train.py"], {
          env: { STEPS: "600", EVERY: "50", STEP_DELAY: "0.01" },
        }),
        bundle,
      );
      let removedAt = 0;
      const seen: Partial<ResumeRow> = {};
      let sawStep = false;
      const watched = c.watchAll(id, {
        onLine: (l) => {
          if (/^step (1\d\d|[2-9]\d\d) loss/.test(l.text)) sawStep = true;
          if (removedAt && seen.restored === undefined && l.text.startsWith("restored step ")) {
            seen.restored = Date.now() - removedAt;
          }
        },
      });
      await waitFor("step 100", () => Promise.resolve(sawStep), (v) => v, 120_000);
      const [container] = await docker.listContainers({
        filters: { label: [`cumulus.job=${id}`] },
      });
      removedAt = Date.now();
      const polling = (async () => {
        const j = await waitFor("resuming", () => c.getJob(id), (j) => j.state !== "RUNNING");
        seen.resuming = Date.now() - removedAt;
        await waitFor(
          "running again",
          () => c.getJob(id),
          (j) => (j.state === "RUNNING" && j.attempts >= 2) || j.state === "SUCCEEDED",
          120_000,
        );
        seen.running = Date.now() - removedAt;
        return j;
      })();
      await docker.getContainer(container.Id).remove({ force: true });
      await polling;
      const { job } = await watched;
      if (job.state !== "SUCCEEDED" || seen.restored === undefined) {
        throw new Error(
          `resume ${r + 1}: job ${id} ended ${job.state} (${job.reason}), ` +
            `restored line ${seen.restored === undefined ? "missing" : "seen"}`,
        );
      }
      rows.push(seen as ResumeRow);
      console.error(
        `resume ${
          r + 1
        }/${opts.repeats}: RESUMING +${seen.resuming} ms, RUNNING +${seen.running} ms, ` +
          `restored line +${seen.restored} ms`,
      );
    }
    return rows;
  } finally {
    c.close();
    await stack.stop();
    await s3.stop();
  }
}

function spread(xs: number[]): string {
  return `${fmt(Math.min(...xs) / 1000, 2)} / ${fmt(quantile(xs, 0.5) / 1000, 2)} / ${
    fmt(Math.max(...xs) / 1000, 2)
  }`;
}

/** Runs both measurements and returns a Markdown section. */
export async function runTimeboxBench(
  opts: TimeboxOptions = DEFAULT_TIMEBOX_OPTIONS,
): Promise<string> {
  const daemon = await expiryPath(opts, true);
  const backstop = await expiryPath(opts, false);
  const resume = await resumeLatency(opts);
  const g = opts.graceS;
  const row = (name: string, rows: ExpiryRow[]) => {
    const terms = rows.flatMap((r) => r.termLag === undefined ? [] : [r.termLag]);
    const states = [...new Set(rows.map((r) => r.state))].join(", ");
    return `| ${name} | ${rows.length} (${states}) | ${
      terms.length ? spread(terms) : "not sent"
    } | **${spread(rows.map((r) => r.overrun))}** | ${spread(rows.map((r) => r.recorded))} |`;
  };
  return [
    "## Time-boxing precision and resume latency (issue 14)",
    "",
    `Command: \`deno task bench timebox\` (alone: \`deno run -A bench/timebox.ts --jobs ${opts.jobs} ` +
    `--repeats ${opts.repeats}\`). Machine: ${navigator.hardwareConcurrency} cores, one local ` +
    "Swarm node, real Chronos partitions (local agent).",
    "",
    `### A job's duration is enforced at deadline + grace (stop_grace_period ${g} s)`,
    "",
    `${opts.jobs} jobs per path, at once, half with \`duration\` 5 s and half 10 s, each running ` +
    "`sh -c \"trap '' TERM; exec sleep 3600\"` (ignores SIGTERM, never ends by itself). " +
    "Deadline = the partition's `deadline_ms` (creation + duration). Times from Docker's own " +
    "container events (`kill` with its signal, `die`), so they are when the engine acted, not when " +
    "Cumulus noticed. Goal: the container is gone within 1 s of deadline + grace.",
    "",
    "| path | jobs (end state) | SIGTERM after the deadline, s: min / median / max | **died after deadline + grace, s: min / median / max** | state recorded after the deadline, s |",
    "|---|---|---|---|---|",
    row(
      "node's agent daemon (`cumulus-agent serve --grace 10 --interval 200`) + orchestrator",
      daemon,
    ),
    row("orchestrator backstop only (no agent daemon on the node)", backstop),
    "",
    "With the node's agent daemon, SIGTERM comes at the deadline and Docker's SIGKILL at " +
    "deadline + grace. Without one, the orchestrator's backstop acts at deadline + grace + 1 s " +
    "(the 1 s leaves the daemon, where there is one, to act and be named) plus up to one task " +
    "poll, records EXPIRED, and only then stops the container, giving it a further grace period: " +
    "a job that ignores SIGTERM then runs about one grace period + 1 s past deadline + grace. " +
    "`cumulus up` runs the agent daemon (supervised), so the local stack takes the first path. " +
    "Slurm, for comparison (documented behaviour): a job past a 60 s limit may run up to ~27 s more " +
    "before SIGTERM (the limit is checked periodically), then 30 s (`KillWait`) to SIGKILL.",
    "",
    `### Failure → resumed from checkpoint (${opts.repeats} container removals)`,
    "",
    "The PyTorch fixture `tests/fixtures/train_ckpt` (checkpoint every 50 steps, L1 + S3 on " +
    "s3rver) runs until it printed step 100 or later; its container is then force-removed " +
    "(`docker rm -f`). Times from the removal, seen by a client polling GetJob and following " +
    "WatchJob in the bench process:",
    "",
    "| event after the container was removed | min / median / max, s |",
    "|---|---|",
    `| job leaves RUNNING (RESUMING recorded) | ${spread(resume.map((r) => r.resuming))} |`,
    `| job RUNNING again (attempt 2) | ${spread(resume.map((r) => r.running))} |`,
    `| first line of attempt 2 saying \`restored step N from l1\` | **${
      spread(resume.map((r) => r.restored))
    }** |`,
    "",
    "Every job ended SUCCEEDED after restoring (checked).",
    "",
  ].join("\n");
}

if (import.meta.main) {
  console.log(await runTimeboxBench(parseTimeboxFlags(Deno.args)));
  Deno.exit(0);
}
