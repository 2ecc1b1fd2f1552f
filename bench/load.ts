// deno-lint-ignore-file no-explicit-any -- dockerode's service types lack fields the Engine API takes
/**
 * Load (issue 14, item 5): N trivial jobs (`true` in the default job image)
 * submitted by C concurrent TypeScript SDK clients (one user each) to a real
 * orchestrator process with `max_concurrent_jobs` at its default, on the real
 * Swarm engine; every job must end SUCCEEDED. Measured: submit throughput,
 * drain time (first submit → last job finished), jobs started per second,
 * the orchestrator's RSS and CPU, and its scheduling rounds (/metrics).
 * Baseline in the same run: a raw dockerode loop over N trivial services on
 * the same engine (create, wait until the task completes, remove) with as
 * many services in flight as Cumulus runs jobs at once.
 *
 * Run alone: `deno run -A bench/load.ts --jobs 1000 --clients 8` (prints the
 * Markdown section); `deno task bench load --jobs 1000`.
 * @module
 */
import { connectDocker } from "../src/swarm/mod.ts";
import { CumulusClient, type JobRecord } from "../src/sdk/mod.ts";
import { freePort, type OrchestratorProcess, spawnOrchestrator } from "../tests/helpers/process.ts";
import { JOB_IMAGE, SWARM_SOCKET, TEST_ADMIN_TOKEN } from "../tests/helpers/stack.ts";
import { parseIntFlags } from "./flags.ts";
import { fmt, quantile } from "./stats.ts";

/** Options of {@link runLoadBench}. */
export type LoadOptions = {
  /** Jobs submitted in all. @default 100 */
  jobs: number;
  /** Concurrent SDK clients, each submitting its share in turn. @default 8 */
  clients: number;
  /** Raw services in flight at once in the baseline (Cumulus's default limit). @default 5 */
  inFlight: number;
  /** Task-state poll interval of the baseline, ms (Cumulus's default poll_interval_ms). @default 200 */
  pollMs: number;
};

/** Default load options: small enough for a plain `deno task bench`. */
export const DEFAULT_LOAD_OPTIONS: LoadOptions = {
  jobs: 100,
  clients: 8,
  inFlight: 5,
  pollMs: 200,
};

/**
 * Parses the bench's flags (`--jobs N`, `--clients N`, also `--name=N`; the other
 * options too) over the defaults.
 * @throws {BenchFlagError} on an unknown flag or a value that is not a positive integer
 */
export function parseLoadFlags(args: readonly string[]): LoadOptions {
  return parseIntFlags(args, DEFAULT_LOAD_OPTIONS);
}

/** Resident and peak memory of a process, in MiB (Linux /proc). */
async function memoryOf(pid: number): Promise<{ rssMiB: number; peakMiB: number }> {
  const text = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? NaN);
  return { rssMiB: kb("VmRSS") / 1024, peakMiB: kb("VmHWM") / 1024 };
}

/** User + system CPU seconds a process used so far (Linux /proc, 100 ticks a second). */
async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces) start at state: utime, stime are 14, 15.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

/** One value of the orchestrator's /metrics page. */
function metric(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}]/g, "\\$&")} ([0-9.e+-]+)$`, "m").exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Every job of the orchestrator, paged. */
async function allJobs(client: CumulusClient): Promise<JobRecord[]> {
  const out: JobRecord[] = [];
  let pageToken = "";
  do {
    const page = await client.listJobs({ pageSize: 1000, pageToken });
    out.push(...page.jobs);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return out;
}

interface CumulusRun {
  submitS: number;
  drainS: number;
  startsPerS: number;
  startSpreadS: number;
  rssBefore: number;
  rssAfter: number;
  peak: number;
  cpuS: number;
  rounds: number;
  busyMsSum: number;
  busyMsMax: number;
  wallMsSum: number;
  submitLatency: number[];
}

async function cumulusLoad(opts: LoadOptions): Promise<CumulusRun> {
  const dataDir = await Deno.makeTempDir({ prefix: "cumulus-load-" });
  const metricsPort = freePort();
  let orch: OrchestratorProcess | null = null;
  const clients: CumulusClient[] = [];
  try {
    // MAX_CONCURRENT_JOBS is left unset: the default (5) is what is measured.
    orch = await spawnOrchestrator(dataDir, freePort(), {
      ORCHESTRATOR_METRICS_PORT: String(metricsPort),
    });
    const scrape = async () =>
      await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, {
        headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
      })).text();
    for (let i = 0; i < opts.clients; i++) clients.push(new CumulusClient(orch.url));
    // Warm-up job (modules, image inspect, first service): not counted.
    const warm = await (await clients[0].submit({ command: ["true"] })).wait();
    if (warm.state !== "SUCCEEDED") throw new Error(`warm-up job ended ${warm.state}`);
    const pid = orch.child.pid;
    const before = await memoryOf(pid);
    const cpu0 = await cpuSecondsOf(pid);
    const m0 = await scrape();

    const t0 = Date.now();
    const latencies: number[] = [];
    const ids: string[] = [];
    await Promise.all(clients.map(async (client, k) => {
      const mine = Math.floor(opts.jobs / opts.clients) + (k < opts.jobs % opts.clients ? 1 : 0);
      for (let i = 0; i < mine; i++) {
        const s = performance.now();
        const job = await client.submit({ command: ["true"], user: `load-${k}`, name: `l${i}` });
        latencies.push(performance.now() - s);
        ids.push(job.id);
      }
    }));
    const submitted = Date.now();
    console.error(`load: ${ids.length} jobs submitted in ${(submitted - t0) / 1000} s`);

    // Drained when every job is terminal (the store's counts, read from /metrics).
    const until = Date.now() + 120_000 + opts.jobs * 3_000;
    let lastLog = 0;
    for (;;) {
      const text = await scrape();
      const ended = ["SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"]
        .reduce((n, s) => n + metric(text, `cumulus_jobs{state="${s}"}`), 0) - 1; // minus warm-up
      if (ended >= opts.jobs) break;
      if (Date.now() > until) throw new Error(`load: only ${ended} of ${opts.jobs} jobs ended`);
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        console.error(`load: ${ended}/${opts.jobs} ended after ${(lastLog - t0) / 1000} s`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const cpu1 = await cpuSecondsOf(pid);
    const m1 = await scrape();
    const mine = new Set(ids);
    const jobs = (await allJobs(clients[0])).filter((j) => mine.has(j.id));
    const bad = jobs.filter((j) => j.state !== "SUCCEEDED");
    if (jobs.length !== opts.jobs || bad.length > 0) {
      throw new Error(
        `load: ${jobs.length - bad.length} of ${opts.jobs} jobs SUCCEEDED; first other: ` +
          (bad[0] ? `${bad[0].id} ${bad[0].state} ${bad[0].reason}` : "missing jobs"),
      );
    }
    const starts = jobs.map((j) => j.startedAtMs!).sort((a, b) => a - b);
    const lastEnd = Math.max(...jobs.map((j) => j.finishedAtMs!));
    // After the drain, with one idle pause so short-lived garbage can go.
    await new Promise((r) => setTimeout(r, 2000));
    const after = await memoryOf(pid);
    const delta = (name: string) => metric(m1, name) - metric(m0, name);
    const startSpreadS = (starts[starts.length - 1] - starts[0]) / 1000;
    return {
      submitS: (submitted - t0) / 1000,
      drainS: (lastEnd - t0) / 1000,
      startsPerS: (starts.length - 1) / startSpreadS,
      startSpreadS,
      rssBefore: before.rssMiB,
      rssAfter: after.rssMiB,
      peak: after.peakMiB,
      cpuS: cpu1 - cpu0,
      rounds: delta("cumulus_schedule_round_busy_ms_count"),
      busyMsSum: delta("cumulus_schedule_round_busy_ms_sum"),
      busyMsMax: metric(m1, "cumulus_schedule_round_busy_ms_max"),
      wallMsSum: delta("cumulus_schedule_round_wall_ms_sum"),
      submitLatency: latencies,
    };
  } finally {
    for (const c of clients) c.close();
    if (orch) {
      orch.child.kill("SIGTERM");
      await orch.status;
    }
    await Deno.remove(dataDir, { recursive: true });
  }
}

interface RawRun {
  drainS: number;
  perService: number[];
}

/** The baseline: create → task complete → remove, `inFlight` services at a time. */
async function rawLoad(opts: LoadOptions): Promise<RawRun> {
  const docker = connectDocker(SWARM_SOCKET);
  const imageId = (await docker.getImage(JOB_IMAGE).inspect()).Id;
  const one = async (i: number): Promise<number> => {
    const s = performance.now();
    const svc = await docker.createService({
      Name: `bench-load-${crypto.randomUUID().slice(0, 8)}-${i}`,
      Labels: { "cumulus.bench": "load" },
      TaskTemplate: {
        ContainerSpec: { Image: imageId, Command: ["true"] },
        RestartPolicy: { Condition: "none" },
        Networks: [{ Target: "host" }],
      },
    } as any);
    try {
      const until = Date.now() + 120_000;
      for (;;) {
        const tasks: any[] = await (docker as any).listTasks(
          { filters: { service: [svc.id] } } as any,
        );
        const state = tasks[0]?.Status?.State as string | undefined;
        if (state === "complete") break;
        if (state && ["failed", "rejected", "shutdown", "orphaned"].includes(state)) {
          throw new Error(`raw service ${i}: task ${state}: ${tasks[0].Status?.Err ?? ""}`);
        }
        if (Date.now() > until) throw new Error(`raw service ${i}: still ${state} after 120 s`);
        await new Promise((r) => setTimeout(r, opts.pollMs));
      }
    } finally {
      await svc.remove();
    }
    return performance.now() - s;
  };
  await one(-1); // warm-up, not counted
  const perService: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: opts.inFlight }, async () => {
    while (next < opts.jobs) perService.push(await one(next++));
  }));
  return { drainS: (performance.now() - t0) / 1000, perService };
}

/** Runs the baseline, then Cumulus, and returns a Markdown section. */
export async function runLoadBench(opts: LoadOptions = DEFAULT_LOAD_OPTIONS): Promise<string> {
  const raw = await rawLoad(opts);
  console.error(`load: raw baseline drained ${opts.jobs} services in ${fmt(raw.drainS)} s`);
  const ours = await cumulusLoad(opts);
  console.error(`load: cumulus drained ${opts.jobs} jobs in ${fmt(ours.drainS)} s`);
  const rawRate = opts.jobs / raw.drainS;
  const ourRate = opts.jobs / ours.drainS;
  const n = opts.jobs;
  return [
    `## Load: ${n} trivial jobs from ${opts.clients} clients (issue 14)`,
    "",
    `Command: \`deno task bench load --jobs ${n} --clients ${opts.clients}\` (the default bench ` +
    `run uses ${DEFAULT_LOAD_OPTIONS.jobs} jobs). Machine: ${navigator.hardwareConcurrency} ` +
    `cores, one local Swarm node; image \`${JOB_IMAGE}\`, command \`true\`.`,
    "",
    `Cumulus: an orchestrator process (\`main.ts orchestrator\`, \`max_concurrent_jobs\` at its ` +
    `default 5, \`poll_interval_ms\` 200, GPU placement off), ${opts.clients} TypeScript SDK ` +
    `clients in the bench process, one user each, each submitting its share one after another. ` +
    `All ${n} jobs ended SUCCEEDED (checked). Baseline, same run, same engine: raw dockerode ` +
    `\`createService\` → poll the task every ${opts.pollMs} ms until \`complete\` → ` +
    `\`remove\`, ${opts.inFlight} services in flight (the same concurrency as Cumulus's ` +
    `default), run first. One warm-up job/service each, not counted.`,
    "",
    "| figure | raw dockerode loop | Cumulus | ratio (Cumulus / raw) |",
    "|---|---|---|---|",
    `| drain time (first submit/create → last finished), s | ${fmt(raw.drainS)} | ${
      fmt(ours.drainS)
    } | ${fmt(ours.drainS / raw.drainS, 2)} |`,
    `| jobs (services) completed per second | ${fmt(rawRate, 2)} | ${fmt(ourRate, 2)} | ${
      fmt(ourRate / rawRate, 2)
    } |`,
    `| per job: create/submit → finished, p50 / p95 s | ${
      fmt(quantile(raw.perService, 0.5) / 1000, 2)
    } / ${fmt(quantile(raw.perService, 0.95) / 1000, 2)} | (queued behind the limit) | |`,
    "",
    "| Cumulus figure | value |",
    "|---|---|",
    `| submit throughput (${n} SubmitJob calls, ${opts.clients} clients) | **${
      fmt(n / ours.submitS)
    } jobs/s** (${fmt(ours.submitS, 2)} s; per call p50 ${
      fmt(quantile(ours.submitLatency, 0.5))
    } ms, p95 ${fmt(quantile(ours.submitLatency, 0.95))} ms) |`,
    `| jobs started per second (first → last start, ${fmt(ours.startSpreadS)} s) | ${
      fmt(ours.startsPerS, 2)
    } |`,
    `| orchestrator RSS before (after the warm-up job) → after the drain | ${
      fmt(ours.rssBefore)
    } MiB → ${fmt(ours.rssAfter)} MiB (peak ${fmt(ours.peak)} MiB) |`,
    `| orchestrator CPU (user + system) during the run | ${fmt(ours.cpuS)} s (${
      fmt(ours.cpuS * 1000 / n)
    } ms a job) |`,
    `| scheduling rounds: count; on-thread (CPU) time sum / mean / max | ${ours.rounds}; ${
      fmt(ours.busyMsSum)
    } ms / ${fmt(ours.busyMsSum / ours.rounds, 3)} ms / ${fmt(ours.busyMsMax, 2)} ms |`,
    `| scheduling rounds: wall time sum / mean (their awaited Docker image lookups included) | ${
      fmt(ours.wallMsSum)
    } ms / ${fmt(ours.wallMsSum / ours.rounds, 2)} ms |`,
    "",
    "The scheduling round's CPU is `cumulus_schedule_round_busy_ms` on /metrics: the round's " +
    "synchronous slices between its awaits (store reads, fair-share order, transitions, " +
    "starting runners), which is the time it holds the orchestrator's one JavaScript thread. " +
    "Peers, for context only (other hardware, other work): Slurm sustains ~500 " +
    "batch jobs/s on a tuned controller; Nomad's C2M placed ~1,500 containers/s across a " +
    "cluster.",
    "",
  ].join("\n");
}

if (import.meta.main) {
  console.log(await runLoadBench(parseLoadFlags(Deno.args)));
  Deno.exit(0);
}
