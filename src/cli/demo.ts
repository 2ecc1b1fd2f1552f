/**
 * The demo `cumulus up` runs: examples/demo/train.py as a job, whose
 * container is removed midway (an infrastructure failure), so the job goes
 * RESUMING, restores its newest checkpoint and finishes by itself.
 * @module
 */
import type Docker from "dockerode";
import { formatTable } from "./format.ts";
import { CumulusClient, isTerminalState, type JobRecord, packBundle } from "../sdk/mod.ts";

/** Total training steps of the demo. */
export const DEMO_STEPS = 300;
/** Checkpoint interval of the demo, in steps. */
export const DEMO_EVERY = 25;

/** How long `up` waits for the demo before it gives up. */
export const DEMO_TIMEOUT_MS = 300_000;

/** What {@link runDemo} needs. */
export interface DemoOptions {
  /** Orchestrator address. */
  url: string;
  /** CA of a TLS orchestrator (`grpcs://` url). */
  caPem?: string;
  /** Docker engine the job runs on (to remove its container midway). */
  docker: Docker;
  /** Prints one progress line. */
  say(line: string): Promise<void>;
  /** Clock, epoch ms. */
  now(): number;
  /** Directory holding train.py (default: examples/demo of this checkout). */
  dir?: string;
  /** User token (default: CUMULUS_TOKEN, else the credentials file). */
  token?: string;
  /** Give up waiting after this long (default {@link DEMO_TIMEOUT_MS}). */
  timeoutMs?: number;
}

/** The demo's outcome. */
export interface DemoOutcome {
  jobId: string;
  state: string;
  attempts: number;
  /** Host name of the worker the job finished on. */
  worker: string;
  /** Chronos partition the job held, or "-" when none was made. */
  partition: string;
  /** Seconds from submission to the end. */
  seconds: number;
  /** Step at which the container was removed (0 if the job ended first). */
  interruptedAtStep: number;
  /** Step the second attempt restored, and from where (l1 or l2); 0 and "" if none. */
  restoredStep: number;
  restoredFrom: string;
  /** The job's RESULT line. */
  result: string;
  /** Result and summary table, printed by `up`. */
  text: string;
}

/** Runs the demo job to its end and returns its outcome. */
export async function runDemo(opts: DemoOptions): Promise<DemoOutcome> {
  const dir = opts.dir ?? demoDir();
  const client = new CumulusClient(opts.url, { caPem: opts.caPem, token: opts.token });
  try {
    const { bytes } = await packBundle(dir);
    const t0 = opts.now();
    const job = await client.submit({
      command: ["python3", "train.py"],
      env: { STEPS: String(DEMO_STEPS), EVERY: String(DEMO_EVERY), STEP_DELAY: "0.02" },
      gpuMemory: 0.25,
      duration: 600,
      name: "cumulus-demo",
      retry: { resume: true, maxAttempts: 3 },
    }, { bundle: bytes });
    await opts.say(
      `submitted job ${job.id}: PyTorch training, ${DEMO_STEPS} steps, ` +
        `a checkpoint every ${DEMO_EVERY}`,
    );
    let interruptedAtStep = 0;
    let restoredStep = 0;
    let restoredFrom = "";
    let result = "";
    let partition = "-";
    let last: JobRecord | null = null;
    // Bounded: a demo stuck in the queue (no capacity, no worker) must not hang `up`.
    const timeoutMs = opts.timeoutMs ?? DEMO_TIMEOUT_MS;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      for await (const event of job.watch({ signal })) {
        if (event.job && event.job.state !== last?.state) {
          const j = event.job;
          await opts.say(`job ${j.state}${j.attempts > 0 ? ` (attempt ${j.attempts})` : ""}`);
          // Each attempt holds its own partition: show the one of the attempt that finished.
          if (j.state === "RUNNING") partition = await partitionOf(client, j) ?? partition;
        }
        if (event.job) last = event.job;
        for (const line of event.lines) {
          await opts.say(`  | ${line.text}`);
          const restored = /^restored step (\d+) from (\w+)/.exec(line.text);
          if (restored) [restoredStep, restoredFrom] = [Number(restored[1]), restored[2]];
          if (line.text.startsWith("RESULT ")) result = line.text.slice(7);
          const step = /^step (\d+)\//.exec(line.text);
          if (step && interruptedAtStep === 0 && Number(step[1]) >= DEMO_STEPS / 2) {
            interruptedAtStep = Number(step[1]);
            await opts.say(
              `step ${interruptedAtStep} reached: removing the job's container, as if its ` +
                "worker had failed; the job should resume from its last checkpoint by itself",
            );
            await removeContainers(opts.docker, job.id);
          }
        }
        if (last && isTerminalState(last.state)) break;
      }
    } catch (err) {
      if (!signal.aborted) throw err;
      throw new Error(
        `the demo job ${job.id} did not end within ${timeoutMs / 1000} s (it goes on: ` +
          `'cumulus logs -f ${job.id}' follows it)`,
      );
    }
    const final = await job.status();
    const worker = await workerName(client, final.nodeId);
    const seconds = ((final.finishedAtMs ?? opts.now()) - (final.createdAtMs || t0)) / 1000;
    const table = formatTable(
      ["JOB", "STATE", "WORKER", "PARTITION", "ATTEMPTS", "TIME"],
      [[
        final.id,
        final.state,
        worker,
        partition,
        String(final.attempts),
        `${seconds.toFixed(1)} s`,
      ]],
    );
    const resumed = restoredStep > 0
      ? `interrupted at step ${interruptedAtStep}, resumed from the checkpoint of step ` +
        `${restoredStep} (${restoredFrom === "l2" ? "S3" : "local disk"})`
      : interruptedAtStep > 0
      ? `interrupted at step ${interruptedAtStep}, but no checkpoint was restored`
      : "not interrupted (it ended before the midpoint was seen)";
    const text =
      `\nDemo result: ${result || `(no RESULT line; ${final.reason || final.state})`}\n` +
      `Demo job ${resumed}.\n\n${table}\n`;
    return {
      jobId: final.id,
      state: final.state,
      attempts: final.attempts,
      worker,
      partition,
      seconds,
      interruptedAtStep,
      restoredStep,
      restoredFrom,
      result,
      text,
    };
  } finally {
    client.close();
  }
}

/** examples/demo of this checkout, beside src/. */
function demoDir(): string {
  const url = new URL("../../examples/demo/", import.meta.url);
  if (url.protocol !== "file:") {
    throw new Error(`the demo needs examples/demo/ on disk; this copy runs from ${url.origin}`);
  }
  return url.pathname;
}

async function removeContainers(docker: Docker, jobId: string): Promise<void> {
  const found = await docker.listContainers({ filters: { label: [`cumulus.job=${jobId}`] } });
  for (const c of found) await docker.getContainer(c.Id).remove({ force: true });
}

/** The partition the job holds now, or null when none is listed (or the call fails). */
async function partitionOf(client: CumulusClient, job: JobRecord): Promise<string | null> {
  try {
    const held = (await client.listPartitions()).find((p) => p.jobId === job.id);
    return held ? held.id : null;
  } catch {
    return null;
  }
}

async function workerName(client: CumulusClient, nodeId: string): Promise<string> {
  try {
    const w = (await client.listWorkers()).find((x) => x.nodeId === nodeId);
    return w ? w.hostname : nodeId.slice(0, 12) || "-";
  } catch {
    return nodeId.slice(0, 12) || "-";
  }
}
