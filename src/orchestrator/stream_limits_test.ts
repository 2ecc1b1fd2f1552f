import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { bindLoopback } from "./_loopback_grpc.ts";
import { loadCumulusProto, loadHealthProto } from "../rpc/mod.ts";
import {
  cutToBudget,
  listedJobBytes,
  MAX_LIST_PAGE_BYTES,
  MAX_REPLY_MESSAGE_BYTES,
  StreamLimiter,
} from "./stream_limits.ts";

type Watch = grpc.ClientReadableStream<unknown>;

/**
 * A Health server whose Watch streams never end on their own (as a WatchJob
 * of a running job), wrapped by `limiter`; `open(user)` starts a Watch whose
 * metadata names `user` and settles on its first message or its error.
 */
async function watchServer(limiter: StreamLimiter) {
  const Health = loadHealthProto();
  const server = new grpc.Server();
  server.addService(
    Health.service,
    limiter.wrap({
      Check: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: "SERVING" }),
      Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        call.write({ status: "SERVING" });
      },
    }),
  );
  const port = await bindLoopback(server);
  const client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as
    & grpc.Client
    & Record<string, CallableFunction>;
  const calls: Watch[] = [];
  return {
    client,
    open(user = ""): { call: Watch; state: Promise<"open" | grpc.ServiceError> } {
      const md = new grpc.Metadata();
      if (user) md.set("user", user);
      const call = client.Watch({ service: "" }, md) as Watch;
      calls.push(call);
      const state = new Promise<"open" | grpc.ServiceError>((resolve) => {
        call.once("data", () => resolve("open"));
        call.on("error", resolve);
      });
      return { call, state };
    },
    close() {
      for (const c of calls) c.cancel();
      client.close();
      server.forceShutdown();
    },
  };
}

/** Waits until `limiter` counts `n` open Watch streams. */
async function untilOpen(limiter: StreamLimiter, n: number): Promise<void> {
  const until = Date.now() + 10_000;
  while (limiter.open("Watch") !== n) {
    assert.ok(Date.now() < until, `${limiter.open("Watch")} streams open, not ${n}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name: "StreamLimiter refuses a stream past its bound naming the key, and frees a place on cancel",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const refused: string[] = [];
    const logged: string[] = [];
    const limiter = new StreamLimiter(
      { Watch: { max: 2, key: "max_test_streams" } },
      { onRefused: (m) => refused.push(m), log: (l) => logged.push(l) },
    );
    const srv = await watchServer(limiter);
    try {
      const held = [srv.open(), srv.open()];
      for (const w of held) assert.equal(await w.state, "open");
      assert.equal(limiter.open("Watch"), 2);
      const third = await srv.open().state as grpc.ServiceError;
      assert.equal(third.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(third.details, /^Watch: 2 streams are open, .*\(max_test_streams\)/);
      assert.deepEqual(refused, ["Watch"]);
      assert.equal(logged.length, 1);
      // Unbounded methods pass through.
      await new Promise<void>((resolve, reject) =>
        srv.client.Check({ service: "" }, (e: unknown) => e ? reject(e) : resolve())
      );
      held[0].call.cancel();
      await untilOpen(limiter, 1);
      assert.equal(await srv.open().state, "open");
    } finally {
      srv.close();
    }
  },
});

Deno.test({
  name: "StreamLimiter: one caller holds at most its own bound; others still get streams",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const limiter = new StreamLimiter(
      {
        Watch: {
          max: 10,
          key: "max_test_streams",
          perCaller: { max: 2, key: "max_test_per_user" },
        },
      },
      {
        callerOf: (call) =>
          String((call as { metadata: grpc.Metadata }).metadata.get("user")[0] ?? "") || null,
      },
    );
    const srv = await watchServer(limiter);
    try {
      const ada = [srv.open("ada"), srv.open("ada")];
      for (const w of ada) assert.equal(await w.state, "open");
      const third = await srv.open("ada").state as grpc.ServiceError;
      assert.equal(third.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(third.details, /^Watch: ada holds 2 streams open, .*\(max_test_per_user\)/);
      // Another user, and calls with no caller, count only against the total.
      assert.equal(await srv.open("bob").state, "open");
      assert.equal(await srv.open().state, "open");
      assert.equal(await srv.open().state, "open");
      assert.equal(limiter.open("Watch"), 5);
      ada[0].call.cancel();
      await untilOpen(limiter, 4);
      assert.equal(await srv.open("ada").state, "open", "a freed place is ada's again");
    } finally {
      srv.close();
    }
  },
});

Deno.test({
  name: "StreamLimiter bounds uploads (client streams) per caller until each answers",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const limiter = new StreamLimiter(
      {
        SubmitJob: {
          max: 10,
          key: "max_uploads",
          perCaller: { max: 1, key: "max_uploads_per_user" },
        },
      },
      {
        callerOf: (call) =>
          String((call as { metadata: grpc.Metadata }).metadata.get("user")[0] ?? "") || null,
      },
    );
    const proto = loadCumulusProto();
    const server = new grpc.Server();
    // An upload answers when its client has sent everything.
    server.addService(
      proto.Cumulus.service,
      limiter.wrap({
        SubmitJob: (
          call: grpc.ServerReadableStream<unknown, unknown>,
          cb: grpc.sendUnaryData<unknown>,
        ) => {
          call.on("data", () => {});
          call.on("end", () => cb(null, { jobId: "j" }));
        },
      }),
    );
    const port = await bindLoopback(server);
    const client = new proto.Cumulus(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as
      & grpc.Client
      & Record<string, CallableFunction>;
    const upload = (user: string) => {
      const md = new grpc.Metadata();
      md.set("user", user);
      let call!: grpc.ClientWritableStream<unknown>;
      const answer = new Promise<unknown>((resolve) => {
        call = client.SubmitJob(md, (err: grpc.ServiceError | null) => resolve(err ?? "ok"));
      });
      return { call, answer };
    };
    try {
      const first = upload("ada");
      const until = Date.now() + 10_000;
      while (limiter.open("SubmitJob") !== 1) {
        assert.ok(Date.now() < until, "the first upload was never admitted");
        await new Promise((r) => setTimeout(r, 20));
      }
      const second = upload("ada");
      second.call.end();
      const refused = await second.answer as grpc.ServiceError;
      assert.equal(refused.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(refused.details, /^SubmitJob: ada holds 1 streams open, .*max_uploads_per_user/);
      // Another user uploads meanwhile.
      const bob = upload("bob");
      bob.call.end();
      assert.equal(await bob.answer, "ok");
      // Once ada's first upload has its answer, her next one is admitted.
      first.call.end();
      assert.equal(await first.answer, "ok");
      assert.equal(limiter.open("SubmitJob"), 0);
      const third = upload("ada");
      third.call.end();
      assert.equal(await third.answer, "ok");
    } finally {
      client.close();
      server.forceShutdown();
    }
  },
});

Deno.test("cutToBudget keeps the longest head within the budget, never less than one item", () => {
  const cases: Array<[number[], number, number[]]> = [
    [[], 10, []],
    [[4, 4, 4], 10, [4, 4]],
    [[4, 4, 2], 10, [4, 4, 2]],
    [[30, 1], 10, [30]],
  ];
  for (const [sizes, budget, want] of cases) {
    assert.deepEqual(cutToBudget(sizes, (n) => n, budget), want);
  }
});

Deno.test("listedJobBytes bounds a job's wire size from above, argv and env names counted", () => {
  const spec = {
    image: "img",
    command: ["sh", "-c", "x".repeat(120_000)],
    env: { ["K".repeat(1000)]: "secret value never listed" },
    constraints: [],
    name: "n",
    user: "u",
    workdir: "",
    s3Prefix: "p",
  };
  const bytes = listedJobBytes(spec);
  assert.ok(bytes >= 120_000 + 1000, `estimate ${bytes}`);
  assert.ok(bytes <= 3 * (120_000 + 1100) + 1024, `estimate ${bytes}`);
  // A page of jobs at the argv bound stays under the clients' receive limit.
  assert.ok(MAX_LIST_PAGE_BYTES + bytes < MAX_REPLY_MESSAGE_BYTES);
});
