// deno-lint-ignore-file no-explicit-any -- dockerode types lack service log options
/**
 * Spine benchmarks, each against a baseline measured in the same run:
 * - submit → first log line through Cumulus vs a raw dockerode
 *   `service create` → first log line of the same image (alternating runs);
 * - log relay: a job printing >= 100 MB, received by a WatchJob client, vs a
 *   raw grpc-js server stream of the same bytes in this process; plus the raw
 *   Docker service-log read of the same job for context.
 *
 * Run alone: `deno run -A bench/spine_bench.ts` (prints the Markdown section).
 * @module
 */
import { startBenchStack } from "./bench_stack.ts";
import * as grpc from "@grpc/grpc-js";
import { loadCumulusProto } from "../src/rpc/mod.ts";
import { FrameDecoder } from "../src/swarm/mod.ts";
import { packBundle } from "../src/sdk/mod.ts";
import { spec, TestClient } from "../tests/helpers/client.ts";
import { JOB_IMAGE } from "../tests/helpers/stack.ts";
import { fmt, quantile } from "./stats.ts";

const FIRST_LOG_RUNS = Number(Deno.env.get("BENCH_FIRST_LOG_RUNS") ?? 20);
const RELAY_LINES = Number(Deno.env.get("BENCH_RELAY_LINES") ?? 1_000_000);
const RELAY_PAIRS = Number(Deno.env.get("BENCH_RELAY_PAIRS") ?? 5);
const LINE = "x".repeat(100);
const SETTLE_MS = Number(Deno.env.get("BENCH_SETTLE_MS") ?? 500);
/** The network raw services join: the one the orchestrator's jobs join now (set at start). */
let network = "host";

function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, SETTLE_MS));
}

async function cumulusFirstLog(c: TestClient): Promise<number> {
  const t0 = performance.now();
  const id = await c.submit(spec(["sh", "-c", "echo first"]));
  let first = 0;
  await new Promise<void>((resolve, reject) => {
    const call = c.raw.WatchJob({ jobId: id });
    call.on("data", (ev: { lines: unknown[] }) => {
      if (!first && ev.lines.length > 0) first = performance.now();
    });
    call.on("error", reject);
    call.on("end", resolve);
  });
  return first - t0;
}

async function rawFirstLog(docker: import("dockerode"), imageId: string): Promise<number> {
  const t0 = performance.now();
  const svc = await docker.createService({
    Name: `bench-raw-${crypto.randomUUID().slice(0, 8)}`,
    Labels: { "cumulus.bench": "1" },
    TaskTemplate: {
      ContainerSpec: { Image: imageId, Command: ["sh", "-c", "echo first"] },
      RestartPolicy: { Condition: "none" },
      Networks: [{ Target: network }],
    },
  } as any);
  const stream: any = await svc.logs(
    { follow: true, stdout: true, stderr: true, timestamps: true } as any,
  );
  const dec = new FrameDecoder();
  const first = await new Promise<number>((resolve) => {
    stream.on("data", (d: Uint8Array) => {
      if (dec.push(d).length > 0) resolve(performance.now());
    });
  });
  stream.destroy();
  await svc.remove();
  return first - t0;
}

/** Throughput of a raw grpc-js server stream carrying `lines` lines in batches. */
async function rawGrpcStream(lines: number): Promise<{ mbps: number; bytes: number }> {
  const { Cumulus } = loadCumulusProto();
  const server = new grpc.Server();
  const batch = 2000;
  server.addService(Cumulus.service, {
    WatchJob: async (call: grpc.ServerWritableStream<unknown, unknown>) => {
      let seq = 0;
      while (seq < lines) {
        const n = Math.min(batch, lines - seq);
        const msg = {
          lines: Array.from({ length: n }, () => ({
            seq: ++seq,
            stream: "STDOUT",
            timeMs: Date.now(),
            text: LINE,
          })),
        };
        if (!call.write(msg)) await new Promise((r) => call.once("drain", r));
      }
      call.end();
    },
  });
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? rej(e) : res(p),
    )
  );
  const client = new Cumulus(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as
    & Record<string, CallableFunction>
    & grpc.Client;
  let bytes = 0;
  let t0 = 0;
  const t1 = await new Promise<number>((resolve, reject) => {
    const call = client.WatchJob({ jobId: "x" });
    call.on("data", (ev: { lines: Array<{ text: string }> }) => {
      if (!t0) t0 = performance.now();
      for (const l of ev.lines) bytes += l.text.length + 1;
    });
    call.on("error", reject);
    call.on("end", () => resolve(performance.now()));
  });
  client.close();
  server.forceShutdown();
  return { mbps: bytes / 1e6 / ((t1 - t0) / 1000), bytes };
}

/** Submits `cmd` (with `bundle`), watches it to the end and measures the live relay. */
async function relay(
  c: TestClient,
  cmd: string[],
  bundle: Uint8Array | undefined,
): Promise<{ id: string; mbps: number; bytes: number; count: number }> {
  const id = await c.submit(spec(cmd), bundle);
  let bytes = 0;
  let count = 0;
  let t0 = 0;
  const tEnd = await new Promise<number>((resolve, reject) => {
    const call = c.raw.WatchJob({ jobId: id });
    call.on("data", (ev: { lines: Array<{ text: string }> }) => {
      if (!t0 && ev.lines.length) t0 = performance.now();
      for (const l of ev.lines) bytes += l.text.length + 1;
      count += ev.lines.length;
    });
    call.on("error", reject);
    call.on("end", () => resolve(performance.now()));
  });
  if (count !== RELAY_LINES) {
    throw new Error(`log relay lost lines: ${count} of ${RELAY_LINES} arrived`);
  }
  return { id, mbps: bytes / 1e6 / ((tEnd - t0) / 1000), bytes, count };
}

/** Runs the spine benchmarks and returns a Markdown section. */
export async function runSpineBench(): Promise<string> {
  const started = await startBenchStack();
  const stack = started.stack;
  network = started.network;
  const c = new TestClient(stack.url);
  const docker = stack.orch.swarm.docker;
  const imageId = (await stack.orch.swarm.resolveImage(JOB_IMAGE))!;
  try {
    // Warm up both paths once (image layers, page cache).
    await cumulusFirstLog(c);
    await rawFirstLog(docker, imageId);
    const ours: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < FIRST_LOG_RUNS; i++) {
      // A pause before each run, the same for both paths: the previous run's
      // container teardown in Swarm must not overlap the next run's start.
      await settle();
      raw.push(await rawFirstLog(docker, imageId));
      await settle();
      ours.push(await cumulusFirstLog(c));
      console.error(
        `first-log ${i + 1}/${FIRST_LOG_RUNS}: raw ${fmt(raw[i], 0)} ms, cumulus ${
          fmt(ours[i], 0)
        } ms`,
      );
    }

    // Log relay: a job printing RELAY_LINES lines of 100 chars (+ newline),
    // once through the runtime's gRPC stream (jobs with a bundle: the default
    // of `cumulus run` and of Python jobs) and once through Docker's log.
    const cmd = ["sh", "-c", `yes ${LINE} | head -n ${RELAY_LINES}`];
    const fixture = new URL("../tests/fixtures/train_ckpt/", import.meta.url).pathname;
    const tinyBundle = (await packBundle(fixture)).bytes;
    // Runtime-stream relay and the raw grpc-js stream alternate, RELAY_PAIRS
    // times, so that machine noise hits both alike; the ratio is the median
    // of the pairs' ratios.
    const streamedRuns: number[] = [];
    const rawRuns: number[] = [];
    for (let i = 0; i < RELAY_PAIRS; i++) {
      const r = await rawGrpcStream(RELAY_LINES);
      const s = await relay(c, cmd, tinyBundle);
      rawRuns.push(r.mbps);
      streamedRuns.push(s.mbps);
      console.error(
        `relay pair ${i + 1}/${RELAY_PAIRS}: raw grpc ${fmt(r.mbps)} MB/s, runtime stream ${
          fmt(s.mbps)
        } MB/s`,
      );
    }
    const pairRatios = streamedRuns.map((s, i) => s / rawRuns[i]);
    const streamed = { mbps: quantile(streamedRuns, 0.5) };
    const viaDocker = await relay(c, cmd, undefined);
    console.error(`relay (docker logs): ${viaDocker.count} lines at ${fmt(viaDocker.mbps)} MB/s`);
    const id = viaDocker.id;
    const bytes = viaDocker.bytes, count = viaDocker.count;
    const ourMbps = viaDocker.mbps;

    // Replay of the same stored log to a new watcher (relay without Docker).
    let rbytes = 0;
    let r0 = 0;
    const r1 = await new Promise<number>((resolve, reject) => {
      const call = c.raw.WatchJob({ jobId: id });
      call.on("data", (ev: { lines: Array<{ text: string }> }) => {
        if (!r0 && ev.lines.length) r0 = performance.now();
        for (const l of ev.lines) rbytes += l.text.length + 1;
      });
      call.on("error", reject);
      call.on("end", () => resolve(performance.now()));
    });
    const replayMbps = rbytes / 1e6 / ((r1 - r0) / 1000);

    // Docker's own service-log pipeline for a job of the same size (ceiling).
    const svc = await docker.createService({
      Name: `bench-raw-${crypto.randomUUID().slice(0, 8)}`,
      TaskTemplate: {
        ContainerSpec: { Image: imageId, Command: cmd },
        RestartPolicy: { Condition: "none" },
        Networks: [{ Target: network }],
      },
    } as any);
    const stream: any = await svc.logs(
      { follow: true, stdout: true, stderr: true, timestamps: true } as any,
    );
    const dec = new FrameDecoder();
    let dbytes = 0, dlines = 0, d0 = 0;
    const d1 = await new Promise<number>((resolve) => {
      stream.on("data", (d: Uint8Array) => {
        const fr = dec.push(d);
        if (!d0 && fr.length) d0 = performance.now();
        for (const f of fr) dbytes += f.text.length + 1;
        dlines += fr.length;
        if (dlines >= RELAY_LINES) resolve(performance.now());
      });
    });
    stream.destroy();
    await svc.remove();
    const dockerMbps = dbytes / 1e6 / ((d1 - d0) / 1000);

    const rawStream = { mbps: quantile(rawRuns, 0.5) };
    console.error(`docker logs: ${fmt(dockerMbps)} MB/s`);

    const p50o = quantile(ours, 0.5), p95o = quantile(ours, 0.95);
    const p50r = quantile(raw, 0.5), p95r = quantile(raw, 0.95);
    return [
      "## Spine: submit → first log line, log relay",
      "",
      "Command: `deno task bench` (this section alone: `deno run -A bench/spine_bench.ts`).",
      `Image: \`${JOB_IMAGE}\` referenced by id, local Swarm (1 node), network ${network} (jobs and raw services alike); machine: ${navigator.hardwareConcurrency} cores.`,
      "",
      `### Submit → first log line (${FIRST_LOG_RUNS} jobs each, alternating)`,
      "",
      "| path | p50 ms | p95 ms |",
      "|---|---|---|",
      `| raw dockerode \`service create\` → first log frame | ${fmt(p50r)} | ${fmt(p95r)} |`,
      `| Cumulus \`SubmitJob\` → first line on \`WatchJob\` | ${fmt(p50o)} | ${fmt(p95o)} |`,
      `| **ratio (Cumulus / raw)** | **${fmt(p50o / p50r, 2)}** | **${fmt(p95o / p95r, 2)}** |`,
      "",
      "Target: ratio at most 1.25.",
      "",
      `### Log relay throughput (${fmt(bytes / 1e6)} MB, ${count} lines of ${
        LINE.length + 1
      } bytes)`,
      "",
      `Medians of ${RELAY_PAIRS} alternating runs each for the first two rows; one run for the others.`,
      "",
      "| path | MB/s |",
      "|---|---|",
      `| raw grpc-js server stream of the same lines, same process (baseline) | ${
        fmt(rawStream.mbps)
      } |`,
      `| **Cumulus live relay, runtime stream**: job → runtime → \`StreamLogs\` → store → \`WatchJob\` (jobs with a bundle or a function) | **${
        fmt(streamed.mbps)
      }** |`,
      `| Cumulus live relay through Docker: job → Docker service logs → store → \`WatchJob\` (plain commands without a bundle) | ${
        fmt(ourMbps)
      } |`,
      `| Cumulus replay of the stored log to a new \`WatchJob\` client | ${fmt(replayMbps)} |`,
      `| Docker service-log follow of the same job, raw dockerode, no Cumulus (context) | ${
        fmt(dockerMbps)
      } |`,
      "",
      `Ratio runtime-stream relay / raw grpc-js stream: **${
        fmt(quantile(pairRatios, 0.5), 2)
      }** (median of the pairs; per pair ${fmt(Math.min(...pairRatios), 2)}–${
        fmt(Math.max(...pairRatios), 2)
      }; target: at least 0.7). ` +
      `Through Docker: ${fmt(ourMbps / rawStream.mbps, 2)} of the raw stream and ${
        fmt(ourMbps / dockerMbps, 2)
      } of Docker's own ` +
      `log follow, which caps that path. Replay of a stored log / raw: ${
        fmt(replayMbps / rawStream.mbps, 2)
      }. ` +
      "Clients run in the orchestrator's process, as the raw baseline's client runs in its server's.",
      "",
    ].join("\n");
  } finally {
    c.close();
    await stack.stop();
  }
}

if (import.meta.main) {
  console.log(await runSpineBench());
  Deno.exit(0);
}
