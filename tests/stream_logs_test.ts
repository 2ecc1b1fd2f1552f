/**
 * Runtime.StreamLogs against a real orchestrator: the test plays the job's
 * runtime with the job's own token (read from its Swarm service).
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { packBundle } from "../src/sdk/mod.ts";
import {
  runningJob,
  runtimeClient,
  spec,
  TestClient,
  tokenMetadata,
  withRunningJob,
} from "./helpers/client.ts";
import { startStack } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

type Duplex = grpc.ClientDuplexStream<unknown, { accepted: number }>;

function lines(from: number, to: number) {
  const n = to - from;
  return {
    texts: Array.from({ length: n }, (_, i) => `rt line ${from + i}`),
    streams: new Uint8Array(Array.from({ length: n }, (_, i) => i % 2)),
    timeMs: Date.now(),
  };
}

/** Sends `batches` on one StreamLogs call; resolves with the acks or the error. */
async function streamBatches(
  rt: Record<string, CallableFunction>,
  md: grpc.Metadata,
  batches: unknown[],
): Promise<{ acks: number[]; error?: grpc.ServiceError }> {
  const acks: number[] = [];
  const call = rt.StreamLogs(md) as Duplex;
  call.on("data", (a) => acks.push(Number(a.accepted)));
  const ended = new Promise<grpc.ServiceError | undefined>((resolve) => {
    call.on("end", () => resolve(undefined));
    call.on("error", resolve);
  });
  for (const b of batches) call.write(b);
  call.end();
  const error = await ended;
  return { acks, error };
}

Deno.test({
  name: "StreamLogs stores numbered lines once, acks them, and refuses gaps and stale attempts",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    const rt = runtimeClient(stack.url);
    try {
      const { id, md } = await runningJob(c, stack.orch.swarm.docker, [
        "sh",
        "-c",
        "echo from-docker; sleep 4",
      ]);

      const ok = await streamBatches(rt, md, [
        { jobId: id, attempt: 1, firstIndex: 0, ...lines(0, 3) },
        // A resend overlapping what was stored (as after a reconnect).
        { jobId: id, attempt: 1, firstIndex: 1, ...lines(1, 5) },
      ]);
      assert.equal(ok.error, undefined);
      assert.deepEqual(ok.acks, [3, 5]);

      const gap = await streamBatches(rt, md, [
        { jobId: id, attempt: 1, firstIndex: 9, ...lines(9, 10) },
      ]);
      assert.equal(gap.error?.code, grpc.status.INVALID_ARGUMENT);
      assert.match(gap.error!.details, /resend from 5/);

      const stale = await streamBatches(rt, md, [
        { jobId: id, attempt: 7, firstIndex: 0, ...lines(0, 1) },
      ]);
      assert.equal(stale.error?.code, grpc.status.FAILED_PRECONDITION);

      const unauth = await streamBatches(rt, tokenMetadata("wrong"), [
        { jobId: id, attempt: 1, firstIndex: 5, ...lines(5, 6) },
      ]);
      assert.equal(unauth.error?.code, grpc.status.UNAUTHENTICATED);

      const { lines: got, job } = await c.watchAll(id);
      assert.equal(job.state, "SUCCEEDED");
      const texts = got.map((l) => l.text);
      assert.deepEqual(
        texts.filter((t) => t.startsWith("rt line")),
        [0, 1, 2, 3, 4].map((i) => `rt line ${i}`),
      );
      assert.ok(texts.includes("from-docker"));
      assert.equal(got.find((l) => l.text === "rt line 1")?.stream, "STDERR");
      got.forEach((l, i) => assert.equal(l.seq, i + 1));
    } finally {
      rt.close();
      c.close();
      await stack.stop();
    }
  },
});

function dataLines(from: number, to: number) {
  const n = to - from;
  const text = Array.from({ length: n }, (_, i) => `data line ${from + i} é\n`).join("");
  return {
    data: new TextEncoder().encode(text),
    streams: new Uint8Array(Array.from({ length: n }, (_, i) => (from + i) % 2)),
    timeMs: Date.now(),
  };
}

Deno.test({
  name:
    "StreamLogs data batches: bytes become numbered lines, resends are skipped, bad data is refused",
  ...opts,
  fn: () =>
    withRunningJob(["sh", "-c", "sleep 4"], async ({ stack, c, rt, id, md }) => {
      const base = { jobId: id, attempt: 1 };

      // Lines 0..2, then a resend of 1..4 overlapping them, then 5 with a
      // byte that is not UTF-8 and an empty line.
      const bad = new Uint8Array([...new TextEncoder().encode("bad "), 0xff, 0x0a, 0x0a]);
      const ok = await streamBatches(rt, md, [
        { ...base, firstIndex: 0, ...dataLines(0, 3) },
        { ...base, firstIndex: 1, ...dataLines(1, 5) },
        { ...base, firstIndex: 5, data: bad, streams: new Uint8Array([1, 0]) },
      ]);
      assert.equal(ok.error, undefined);
      assert.deepEqual(ok.acks, [3, 5, 7]);

      const noNewline = await streamBatches(rt, md, [
        { ...base, firstIndex: 7, data: new TextEncoder().encode("torn") },
      ]);
      assert.equal(noNewline.error?.code, grpc.status.INVALID_ARGUMENT);
      assert.match(noNewline.error!.details, /newline/);
      const both = await streamBatches(rt, md, [
        { ...base, firstIndex: 7, texts: ["a"], data: new TextEncoder().encode("b\n") },
      ]);
      assert.equal(both.error?.code, grpc.status.INVALID_ARGUMENT);

      const { lines: got, job } = await c.watchAll(id);
      assert.equal(job.state, "SUCCEEDED");
      assert.deepEqual(got.map((l) => l.text), [
        ...[0, 1, 2, 3, 4].map((i) => `data line ${i} é`),
        "bad \ufffd",
        "",
      ]);
      assert.deepEqual(got.map((l) => l.stream), [
        "STDOUT",
        "STDERR",
        "STDOUT",
        "STDERR",
        "STDOUT",
        "STDERR",
        "STDOUT",
      ]);
      got.forEach((l, i) => assert.equal(l.seq, i + 1));
      // The same lines replayed from the file after a restart of the log.
      const stored = await Deno.readTextFile(`${stack.dataDir}/logs/${id}.log`);
      const records = stored.split("\n").filter((r) => r.split("\t")[3]?.startsWith("rt:1:"));
      assert.deepEqual(
        records.map((r) => r.split("\t")[3]),
        [0, 1, 2, 3, 4, 5, 6].map((i) => `rt:1:${i}`),
      );
    }),
});

Deno.test({
  name: "a runtime-wrapped job streams its output over gRPC: every line once, in order",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    const n = 200_000;
    try {
      const bundle =
        (await packBundle(new URL("./fixtures/train_ckpt/", import.meta.url).pathname)).bytes;
      const id = await c.submit(
        spec(["sh", "-c", `seq 1 ${n}; echo to-stderr >&2; exit 4`]),
        bundle,
      );
      const { lines, job } = await c.watchAll(id);
      assert.equal(job.state, "FAILED");
      assert.equal(job.exitCode, 4);
      const out = lines.filter((l) => l.stream === "STDOUT").map((l) => l.text);
      assert.equal(out.length, n);
      assert.equal(out[0], "1");
      assert.equal(out[n - 1], String(n));
      for (let i = 0; i < n; i += 997) assert.equal(out[i], String(i + 1));
      assert.ok(lines.some((l) => l.stream === "STDERR" && l.text === "to-stderr"));
      // They came through the runtime's stream, not through Docker's log.
      const stored = await Deno.readTextFile(`${stack.dataDir}/logs/${id}.log`);
      const viaRuntime = stored.split("\n").filter((r) => r.split("\t")[3]?.startsWith("rt:1:"));
      assert.equal(viaRuntime.length, n + 1);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});

Deno.test({
  name:
    "StreamLogs: an ended job takes its shutdown lines, but not lines sent (nor fetches) after its stop window",
  ...opts,
  fn: () =>
    // Grace 2 s: the window is 2 s + 5 s after the job ended.
    withRunningJob(["sleep", "30"], async ({ c, rt, id, md }) => {
      await c.cancel(id);
      const line = (text: string, firstIndex: number) => ({
        jobId: id,
        attempt: 1,
        firstIndex,
        texts: [text],
        streams: new Uint8Array([0]),
        timeMs: Date.now(),
      });
      // As a stopped runtime does: its last lines right after the cancel.
      const late = await streamBatches(rt, md, [line("saving before exit", 0)]);
      assert.equal(late.error, undefined);
      assert.deepEqual(late.acks, [1]);
      const ended = Number((await c.getJob(id)).finishedAtMs);
      while (Date.now() < ended + 7_500) await new Promise((r) => setTimeout(r, 250));
      const forged = await streamBatches(rt, md, [line("[cumulus] forged", 1)]);
      assert.equal(forged.error?.code, grpc.status.FAILED_PRECONDITION);
      assert.match(forged.error?.details ?? "", /already ended \(CANCELLED\): it accepts no more/);
      // Nor does its token fetch the job's bundle or function any more.
      for (const method of ["FetchBundle", "FetchFunction"]) {
        const err = await new Promise<grpc.ServiceError>((resolve) => {
          const s = rt[method]({ jobId: id }, md) as grpc.ClientReadableStream<unknown>;
          s.on("data", () => {});
          s.on("error", resolve);
        });
        assert.equal(err.code, grpc.status.FAILED_PRECONDITION, `${method}: ${err.details}`);
        assert.match(err.details, /it accepts no more (bundle|function) fetches/);
      }
      const texts = (await c.watchAll(id)).lines.map((l) => l.text);
      assert.ok(texts.includes("saving before exit"));
      assert.ok(!texts.includes("[cumulus] forged"), texts.join(" | "));
    }),
});
