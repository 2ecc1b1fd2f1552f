/**
 * Bad input against a real orchestrator: each gets the right gRPC status,
 * no job record is created or half-written, and the server keeps serving.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { loadCumulusProto } from "../src/rpc/mod.ts";
import { authInterceptor, spec, TestClient, waitFor } from "./helpers/client.ts";
import { type Stack, startStack } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function jobCount(c: TestClient): Promise<number> {
  const res = await c.unary<{ jobs: unknown[] }>("ListJobs", { pageSize: 1000 });
  return res.jobs.length;
}

async function withStack(fn: (s: Stack, c: TestClient) => Promise<void>, env = {}) {
  const stack = await startStack({ env });
  const c = new TestClient(stack.url);
  try {
    await fn(stack, c);
  } finally {
    c.close();
    await stack.stop();
  }
}

const badSpecs: Array<[string, Record<string, unknown>, string]> = [
  ["gpu_memory 0", spec(["true"], { gpuMemory: 0 }), "spec.gpu_memory"],
  ["gpu_memory negative", spec(["true"], { gpuMemory: -0.5 }), "spec.gpu_memory"],
  ["gpu_memory above 1", spec(["true"], { gpuMemory: 1.5 }), "spec.gpu_memory"],
  ["duration 0", spec(["true"], { duration: 0 }), "spec.duration"],
  ["duration negative", spec(["true"], { duration: -5 }), "spec.duration"],
  ["empty command", spec([]), "spec.command"],
  ["missing image", spec(["true"], { image: "cumulus-no-such-image:nope" }), "spec.image"],
  ["bad env name", spec(["true"], { env: { "1BAD": "x" } }), "spec.env"],
  // Image references go into the Docker API's URL path: these once killed the orchestrator
  // (a redirect followed by dockerode's modem outside any promise).
  ["image ../../info", spec(["true"], { image: "../../info" }), "spec.image"],
  [
    "image x/../../containers/json",
    spec(["true"], { image: "x/../../containers/json" }),
    "spec.image",
  ],
  ["image %2e%2e/%2e%2e/info", spec(["true"], { image: "%2e%2e/%2e%2e/info" }), "spec.image"],
  ["env of 7.5 MiB", spec(["true"], { env: { BIG: "x".repeat(7.5 * 1024 * 1024) } }), "spec.env"],
  ["NUL in an env value", spec(["true"], { env: { A: "a\0b" } }), "spec.env"],
];

Deno.test({
  name: "invalid specs get INVALID_ARGUMENT naming the field and create no job",
  ...opts,
  fn: () =>
    withStack(async (_s, c) => {
      for (const [name, bad, field] of badSpecs) {
        await assert.rejects(c.submit(bad), (e: grpc.ServiceError) => {
          assert.equal(e.code, grpc.status.INVALID_ARGUMENT, name);
          assert.ok(e.details.startsWith(field), `${name}: ${e.details}`);
          return true;
        });
      }
      assert.equal(await jobCount(c), 0);
      // Still serving.
      const id = await c.submit(spec(["true"]));
      assert.equal((await c.watchAll(id)).job.state, "SUCCEEDED");
    }),
});

Deno.test({
  name: "a bundle over the size limit gets RESOURCE_EXHAUSTED and leaves no job or file",
  ...opts,
  fn: () =>
    withStack(async (s, c) => {
      const big = new Uint8Array(300 * 1024);
      await assert.rejects(
        c.submit(spec(["true"]), big),
        (e: grpc.ServiceError) =>
          e.code === grpc.status.RESOURCE_EXHAUSTED && /limit/.test(e.details),
      );
      assert.equal(await jobCount(c), 0);
      await waitFor(
        "tmp cleaned",
        async () => {
          const names = [];
          for await (const e of Deno.readDir(`${s.dataDir}/tmp`)) names.push(e.name);
          return names;
        },
        (n) => n.length === 0,
        5000,
      );
      // A bundle within the limit is accepted.
      const id = await c.submit(spec(["true"]), new Uint8Array(10 * 1024));
      assert.equal((await c.getJob(id)).state.length > 0, true);
      await c.cancel(id).catch(() => {});
    }, { CUMULUS_MAX_BUNDLE_BYTES: String(200 * 1024) }),
});

Deno.test({
  name: "unknown job ids get NOT_FOUND from every job call",
  ...opts,
  fn: () =>
    withStack(async (_s, c) => {
      for (const id of ["j-000000000000", "nonsense", "../../etc/passwd"]) {
        await assert.rejects(c.getJob(id), (e: grpc.ServiceError) =>
          e.code === grpc.status.NOT_FOUND);
        await assert.rejects(c.cancel(id), (e: grpc.ServiceError) =>
          e.code === grpc.status.NOT_FOUND);
        await assert.rejects(c.watchAll(id), (e: grpc.ServiceError) =>
          e.code === grpc.status.NOT_FOUND);
      }
      await assert.rejects(
        c.getJob(""),
        (e: grpc.ServiceError) =>
          e.code === grpc.status.INVALID_ARGUMENT && /job_id/.test(e.details),
      );
    }),
});

Deno.test({
  name: "malformed and truncated protobuf messages are refused and the server keeps serving",
  ...opts,
  fn: () =>
    withStack(async (s, c) => {
      const raw = new grpc.Client(s.url, grpc.credentials.createInsecure(), {
        interceptors: [authInterceptor(s.token)],
      });
      const send = (bytes: Uint8Array) =>
        new Promise<grpc.ServiceError | null>((resolve) => {
          raw.makeUnaryRequest(
            "/cumulus.v1.Cumulus/GetJob",
            (b: Uint8Array) => Buffer.from(b),
            (b: Buffer) => b,
            bytes,
            (err) => resolve(err),
          );
        });
      // Field 1 (string) claims 50 bytes but carries 3: truncated.
      const truncated = new Uint8Array([0x0a, 50, 0x6a, 0x2d, 0x31]);
      const garbage = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x12]);
      for (const bytes of [truncated, garbage]) {
        const err = await send(bytes);
        assert.ok(err, "a broken message was accepted");
        assert.notEqual(err.code, grpc.status.OK);
      }
      raw.close();
      assert.equal(await jobCount(c), 0);
      const id = await c.submit(spec(["true"]));
      assert.equal((await c.watchAll(id)).job.state, "SUCCEEDED");
    }),
});

Deno.test({
  name: "a client that disconnects mid-upload leaves no job record and no partial file",
  ...opts,
  fn: () =>
    withStack(async (s, c) => {
      const { Cumulus } = loadCumulusProto();
      const client = new Cumulus(s.url, grpc.credentials.createInsecure(), {
        interceptors: [authInterceptor(s.token)],
      }) as unknown as
        & grpc.Client
        & Record<string, CallableFunction>;
      const call = client.SubmitJob(() => {});
      call.write({ spec: spec(["true"]) });
      for (let i = 0; i < 8; i++) call.write({ chunk: new Uint8Array(64 * 1024) });
      await new Promise((r) => setTimeout(r, 300));
      call.cancel();
      client.close();
      await waitFor(
        "tmp cleaned",
        async () => {
          const names = [];
          for await (const e of Deno.readDir(`${s.dataDir}/tmp`)) names.push(e.name);
          return names;
        },
        (n) => n.length === 0,
        5000,
      );
      assert.equal(await jobCount(c), 0);
      const id = await c.submit(spec(["true"]));
      assert.equal((await c.watchAll(id)).job.state, "SUCCEEDED");
    }),
});

Deno.test({
  name: "the runtime service refuses a wrong job token with UNAUTHENTICATED",
  ...opts,
  fn: () =>
    withStack(async (s, c) => {
      const id = await c.submit(spec(["sh", "-c", "sleep 5"]), new Uint8Array(100));
      const { Runtime } = loadCumulusProto();
      const rt = new Runtime(s.url, grpc.credentials.createInsecure()) as unknown as
        & grpc.Client
        & Record<string, CallableFunction>;
      const md = new grpc.Metadata();
      md.set("x-cumulus-job-token", "not-the-token");
      const err = await new Promise<grpc.ServiceError>((resolve) => {
        const call = rt.FetchBundle({ jobId: id }, md);
        call.on("data", () => {});
        call.on("error", resolve);
      });
      assert.equal(err.code, grpc.status.UNAUTHENTICATED);
      rt.close();
      await c.cancel(id).catch(() => {});
    }),
});
