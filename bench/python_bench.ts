// deno-lint-ignore-file no-explicit-any -- dockerode types lack service log options
/**
 * Python SDK benchmarks, each against a baseline measured in the same run:
 * - round trip of `client.run(lambda: 1)` (Python SDK → orchestrator → Swarm
 *   job → result back), p50 over >= 20 runs, beside a raw dockerode
 *   `service create` → first log frame of the same image running
 *   `python3 -c 'print(1)'`;
 * - result transfer of a 50 MB return value (container pickles it, streams it
 *   with ReportResult, the orchestrator stores it, the client downloads it with
 *   GetResult and unpickles it), beside raw grpcio streams of the same bytes in
 *   the same 1 MiB protobuf messages Cumulus uses, between a Python server and
 *   client on loopback (both directions, as the result travels up then down).
 *
 * The Python side runs under Debian's /usr/bin/python3 (the SDK's test
 * interpreter) with PYTHONPATH=src/sdk/python.
 * Run alone: `deno run -A bench/python_bench.ts` (prints the Markdown section).
 * @module
 */
import { startBenchStack } from "./bench_stack.ts";
import { fileURLToPath } from "node:url";
import { FrameDecoder } from "../src/swarm/mod.ts";
import { JOB_IMAGE } from "../tests/helpers/stack.ts";
import { fmt, quantile } from "./stats.ts";

const RUNS = Number(Deno.env.get("BENCH_PY_RUNS") ?? 20);
const RESULT_RUNS = Number(Deno.env.get("BENCH_PY_RESULT_RUNS") ?? 5);
const RESULT_BYTES = 50_000_000;
const SETTLE_MS = Number(Deno.env.get("BENCH_SETTLE_MS") ?? 500);
const PYTHON = Deno.env.get("CUMULUS_PYTHON") ?? "/usr/bin/python3";
/** The network raw services join: the one the orchestrator's jobs join now (set at start). */
let network = "host";
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The Python half: prints one JSON object with every timing in ms. */
const SCRIPT = String.raw`
import json, os, sys, threading, time
from concurrent import futures
import grpc
from cumulus import CumulusClient
from cumulus._proto import cumulus_pb2 as pb2

url, runs, result_runs, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
settle = float(sys.argv[5])
# Jobs' output is streamed to sys.stdout: keep the real stdout for the JSON alone.
json_out, sys.stdout = sys.stdout, sys.stderr
client = CumulusClient(url)
out = {"roundtrip": [], "small": [], "big": [], "download": [], "raw_up": [], "raw_down": []}

def log(msg):
    print(msg, file=sys.stderr, flush=True)

client.run(lambda: 1)  # warm-up: image layers, page cache, connection
out["queued_to_running"], out["running_to_ended"], out["ended_to_value"] = [], [], []
for i in range(runs):
    time.sleep(settle)  # as before each raw run: no overlap with the last teardown
    t = time.perf_counter()
    # Exactly what client.run does (submit, stream the log, fetch the result),
    # keeping the handle to read the job's recorded times afterwards.
    job = client.submit(lambda: 1)
    value = job._run_streaming()
    end = time.perf_counter()
    out["roundtrip"].append((end - t) * 1000)
    assert value == 1
    info = job.info()
    out["queued_to_running"].append(info.started_at_ms - info.created_at_ms)
    out["running_to_ended"].append(info.finished_at_ms - info.started_at_ms)
    out["ended_to_value"].append(time.time() * 1000 - (time.perf_counter() - end) * 1000 - info.finished_at_ms)
    log(f"python round trip {i + 1}/{runs}: {out['roundtrip'][-1]:.0f} ms")

# Same work in the container (50 MB generated), different result size: the
# difference is the cost of moving the result.
def big():
    import random
    return random.Random(1).randbytes(n)

def small():
    import random
    return len(random.Random(1).randbytes(n))

for i in range(result_runs):
    t = time.perf_counter(); assert client.run(small) == n; out["small"].append((time.perf_counter() - t) * 1000)
    job = client.submit(big)
    t = time.perf_counter(); value = job.result(); out["big"].append((time.perf_counter() - t) * 1000)
    assert len(value) == n
    # The download leg alone: GetResult of the stored result again.
    t = time.perf_counter(); kind, data = job._fetch_result(); out["download"].append((time.perf_counter() - t) * 1000)
    assert len(data) >= n
    log(f"result {i + 1}/{result_runs}: small {out['small'][-1]:.0f} ms, 50 MB {out['big'][-1]:.0f} ms, download {out['download'][-1]:.0f} ms")

# Baseline: raw grpcio, BundleChunk messages of the size Cumulus sends (1 MiB), both directions.
payload = os.urandom(n)
CHUNK = 1024 * 1024

def down(request, context):
    for off in range(0, n, CHUNK):
        yield pb2.BundleChunk(data=payload[off:off + CHUNK])

def up(requests, context):
    total = 0
    for msg in requests:
        total += len(msg.data)
    return pb2.BundleChunk(total_bytes=total)

handler = grpc.method_handlers_generic_handler("bench.Raw", {
    "Down": grpc.unary_stream_rpc_method_handler(down, request_deserializer=pb2.FetchBundleRequest.FromString, response_serializer=pb2.BundleChunk.SerializeToString),
    "Up": grpc.stream_unary_rpc_method_handler(up, request_deserializer=pb2.BundleChunk.FromString, response_serializer=pb2.BundleChunk.SerializeToString),
})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
channel = grpc.insecure_channel(f"127.0.0.1:{port}")
down_call = channel.unary_stream("/bench.Raw/Down", request_serializer=pb2.FetchBundleRequest.SerializeToString, response_deserializer=pb2.BundleChunk.FromString)
up_call = channel.stream_unary("/bench.Raw/Up", request_serializer=pb2.BundleChunk.SerializeToString, response_deserializer=pb2.BundleChunk.FromString)
for i in range(result_runs + 1):
    t = time.perf_counter()
    reply = up_call(pb2.BundleChunk(data=payload[off:off + CHUNK]) for off in range(0, n, CHUNK))
    up_ms = (time.perf_counter() - t) * 1000
    assert reply.total_bytes == n
    t = time.perf_counter()
    buf = bytearray()
    for msg in down_call(pb2.FetchBundleRequest()):
        buf += msg.data
    down_ms = (time.perf_counter() - t) * 1000
    assert len(buf) == n
    if i > 0:  # the first pair warms up
        out["raw_up"].append(up_ms)
        out["raw_down"].append(down_ms)
channel.close()
server.stop(None)
client.close()
print(json.dumps(out), file=json_out)
`;

async function rawFirstLog(docker: import("dockerode"), imageId: string): Promise<number> {
  const t0 = performance.now();
  const svc = await docker.createService({
    Name: `bench-pyraw-${crypto.randomUUID().slice(0, 8)}`,
    Labels: { "cumulus.bench": "1" },
    TaskTemplate: {
      ContainerSpec: { Image: imageId, Args: ["python3", "-c", "print(1)"] },
      RestartPolicy: { Condition: "none" },
      Networks: [{ Target: network }],
    },
  } as any);
  try {
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
    return first - t0;
  } finally {
    await svc.remove();
  }
}

async function buildJobImage(): Promise<void> {
  // The image carries the Python package: bring it up to date (cached by content hash).
  const out = await new Deno.Command("bash", {
    args: [`${ROOT}containers/job/build.sh`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`containers/job/build.sh failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

interface PyTimings {
  roundtrip: number[];
  queued_to_running: number[];
  running_to_ended: number[];
  ended_to_value: number[];
  small: number[];
  big: number[];
  download: number[];
  raw_up: number[];
  raw_down: number[];
}

async function runPython(url: string): Promise<PyTimings> {
  const child = new Deno.Command(PYTHON, {
    args: [
      "-c",
      SCRIPT,
      url,
      String(RUNS),
      String(RESULT_RUNS),
      String(RESULT_BYTES),
      String(SETTLE_MS / 1000),
    ],
    env: { PYTHONPATH: `${ROOT}src/sdk/python` },
    stdout: "piped",
    stderr: "inherit",
  });
  const out = await child.output();
  if (!out.success) throw new Error(`the Python benchmark script failed (exit ${out.code})`);
  return JSON.parse(new TextDecoder().decode(out.stdout)) as PyTimings;
}

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

/** Runs the Python SDK benchmarks and returns a Markdown section. */
export async function runPythonBench(): Promise<string> {
  await buildJobImage();
  const started = await startBenchStack();
  const stack = started.stack;
  network = started.network;
  const docker = stack.orch.swarm.docker;
  try {
    const imageId = await stack.orch.swarm.resolveImage(JOB_IMAGE);
    if (!imageId) throw new Error(`image ${JOB_IMAGE} not found`);
    await rawFirstLog(docker, imageId); // warm-up
    const raw: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // A pause before each run, also taken before each Python round trip:
      // the previous run's Swarm teardown must not overlap the next start.
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      raw.push(await rawFirstLog(docker, imageId));
      console.error(`raw service create → first log ${i + 1}/${RUNS}: ${fmt(raw[i], 0)} ms`);
    }
    const py = await runPython(stack.url);

    const p50o = quantile(py.roundtrip, 0.5), p95o = quantile(py.roundtrip, 0.95);
    const p50r = quantile(raw, 0.5), p95r = quantile(raw, 0.95);
    const delta = quantile(py.big, 0.5) - quantile(py.small, 0.5);
    const ours = mbps(RESULT_BYTES, delta);
    const download = mbps(RESULT_BYTES, quantile(py.download, 0.5));
    const rawUp = quantile(py.raw_up, 0.5), rawDown = quantile(py.raw_down, 0.5);
    const rawBoth = mbps(RESULT_BYTES, rawUp + rawDown);
    const mb = fmt(RESULT_BYTES / 1e6, 0);
    return [
      "## Python SDK: `client.run` round trip, result transfer",
      "",
      "Command: `deno task bench` (this section alone: `deno run -A bench/python_bench.ts`).",
      `Image: \`${JOB_IMAGE}\` referenced by id, local Swarm (1 node), network ${network} ` +
      "(jobs and raw services alike); client: " +
      `\`${PYTHON}\`; machine: ${navigator.hardwareConcurrency} cores.`,
      "",
      `### Round trip of \`client.run(lambda: 1)\` (${RUNS} runs each, raw runs first)`,
      "",
      "| path | p50 ms | p95 ms |",
      "|---|---|---|",
      `| raw dockerode \`service create\` → first log frame of \`python3 -c 'print(1)'\`, same image (baseline) | ${
        fmt(p50r)
      } | ${fmt(p95r)} |`,
      `| Cumulus \`client.run(lambda: 1)\`: pickle, SubmitJob, Swarm service, runtime fetches the call, runs it, ReportResult, job ends, GetResult, unpickle | ${
        fmt(p50o)
      } | ${fmt(p95o)} |`,
      `| **ratio (Cumulus / raw)** | **${fmt(p50o / p50r, 2)}** | **${fmt(p95o / p95r, 2)}** |`,
      "",
      "The raw path stops at the first log line; the Cumulus round trip also waits for the",
      "function to end, the orchestrator to record the end (the runtime's announced exit, the",
      "container's own log read) and the result download. Where the time goes (p50 of the job's",
      "recorded times):",
      "",
      "| phase | p50 ms |",
      "|---|---|",
      `| submitted → seen running (service create, Swarm schedules the task, container start event) | ${
        fmt(quantile(py.queued_to_running, 0.5))
      } |`,
      `| seen running → recorded as ended (runtime start, imports, FetchFunction, call, ReportResult, the function's process exits, the runtime announces it, log read) | ${
        fmt(quantile(py.running_to_ended, 0.5))
      } |`,
      `| recorded as ended → value in the caller (watch ends, GetResult, unpickle) | ${
        fmt(quantile(py.ended_to_value, 0.5))
      } |`,
      "",
      `### Result transfer: ${mb} MB return value (p50 of ${RESULT_RUNS} runs)`,
      "",
      "| path | ms | MB/s |",
      "|---|---|---|",
      `| raw grpcio, Python client ↔ Python server on loopback, 1 MiB \`BundleChunk\` messages: upload + download (baseline) | ${
        fmt(rawUp + rawDown)
      } | ${fmt(rawBoth)} |`,
      `| raw grpcio download alone (baseline) | ${fmt(rawDown)} | ${
        fmt(mbps(RESULT_BYTES, rawDown))
      } |`,
      `| Cumulus: job returning ${mb} MB minus the same job returning its length (pickle, ReportResult, store, GetResult, unpickle) | ${
        fmt(delta)
      } | ${fmt(ours)} |`,
      `| Cumulus \`GetResult\` download alone (stored result fetched again) | ${
        fmt(quantile(py.download, 0.5))
      } | ${fmt(download)} |`,
      "",
      `Ratio Cumulus result transfer / raw grpcio up + down: **${
        fmt(ours / rawBoth, 2)
      }**; download / raw download: **${fmt(download / mbps(RESULT_BYTES, rawDown), 2)}**.`,
      "",
    ].join("\n");
  } finally {
    await stack.stop();
  }
}

if (import.meta.main) {
  console.log(await runPythonBench());
  Deno.exit(0);
}
