/**
 * Runtime.StreamLogs against a real orchestrator: the test plays the job's
 * runtime with the job's own token (read from its Swarm service).
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { loadCumulusProto } from "../src/rpc/mod.ts";
import { packBundle } from "../src/sdk/mod.ts";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
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

Deno.test({
  name: "StreamLogs stores numbered lines once, acks them, and refuses gaps and stale attempts",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    const { Runtime } = loadCumulusProto();
    const rt = new Runtime(stack.url, grpc.credentials.createInsecure()) as unknown as
      & grpc.Client
      & Record<string, CallableFunction>;
    try {
      const id = await c.submit(spec(["sh", "-c", "echo from-docker; sleep 4"]));
      await waitFor("RUNNING", () => c.getJob(id), (j) => j.state === "RUNNING");
      const svc = await stack.orch.swarm.docker.getService(`cumulus-${id}`).inspect();
      const env: string[] = svc.Spec.TaskTemplate.ContainerSpec.Env;
      const token = env.find((e) => e.startsWith("CUMULUS_JOB_TOKEN="))!.split("=")[1];
      const md = new grpc.Metadata();
      md.set("x-cumulus-job-token", token);

      const acks: number[] = [];
      const call = rt.StreamLogs(md) as Duplex;
      call.on("data", (a) => acks.push(Number(a.accepted)));
      const ended = new Promise<void>((resolve, reject) => {
        call.on("end", resolve);
        call.on("error", reject);
      });
      call.write({ jobId: id, attempt: 1, firstIndex: 0, ...lines(0, 3) });
      // A resend overlapping what was stored (as after a reconnect).
      call.write({ jobId: id, attempt: 1, firstIndex: 1, ...lines(1, 5) });
      call.end();
      await ended;
      assert.deepEqual(acks, [3, 5]);

      const gap = rt.StreamLogs(md) as Duplex;
      const gapErr = new Promise<grpc.ServiceError>((resolve) => gap.on("error", resolve));
      gap.on("data", () => {});
      gap.write({ jobId: id, attempt: 1, firstIndex: 9, ...lines(9, 10) });
      const e1 = await gapErr;
      assert.equal(e1.code, grpc.status.INVALID_ARGUMENT);
      assert.match(e1.details, /resend from 5/);

      const stale = rt.StreamLogs(md) as Duplex;
      const staleErr = new Promise<grpc.ServiceError>((resolve) => stale.on("error", resolve));
      stale.on("data", () => {});
      stale.write({ jobId: id, attempt: 7, firstIndex: 0, ...lines(0, 1) });
      assert.equal((await staleErr).code, grpc.status.FAILED_PRECONDITION);

      const bad = new grpc.Metadata();
      bad.set("x-cumulus-job-token", "wrong");
      const unauth = rt.StreamLogs(bad) as Duplex;
      const unauthErr = new Promise<grpc.ServiceError>((resolve) => unauth.on("error", resolve));
      unauth.on("data", () => {});
      unauth.write({ jobId: id, attempt: 1, firstIndex: 5, ...lines(5, 6) });
      assert.equal((await unauthErr).code, grpc.status.UNAUTHENTICATED);

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
