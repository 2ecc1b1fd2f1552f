import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { bindLoopback } from "./_loopback_grpc.ts";
import { loadHealthProto } from "../rpc/mod.ts";
import { lateHandlers } from "./late_handlers.ts";

Deno.test({
  name:
    "lateHandlers: a bound server answers UNAVAILABLE until its handlers are ready, then serves",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const Health = loadHealthProto();
    const late = lateHandlers(Health.service);
    const server = new grpc.Server();
    server.addService(Health.service, late.handlers);
    const port = await bindLoopback(server);
    const client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as
      & grpc.Client
      & Record<string, CallableFunction>;
    const check = () =>
      new Promise<{ err: grpc.ServiceError | null; status?: string }>((resolve) =>
        client.Check(
          { service: "" },
          (err: grpc.ServiceError | null, r?: { status: string }) =>
            resolve({ err, status: r?.status }),
        )
      );
    const watchError = () =>
      new Promise<grpc.ServiceError>((resolve) => {
        const s = client.Watch({ service: "" }) as grpc.ClientReadableStream<unknown>;
        s.on("data", () => {});
        s.on("error", resolve);
      });
    try {
      const early = await check();
      assert.equal(early.err?.code, grpc.status.UNAVAILABLE);
      assert.match(early.err?.details ?? "", /starting/);
      assert.equal((await watchError()).code, grpc.status.UNAVAILABLE);
      late.ready({
        Check: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: "SERVING" }),
        Watch: (call: grpc.ServerWritableStream<unknown, unknown>) =>
          call.emit("error", { code: grpc.status.NOT_FOUND, details: "no watch here" }),
      });
      const later = await check();
      assert.equal(later.err, null);
      assert.equal(later.status, "SERVING");
      assert.equal((await watchError()).code, grpc.status.NOT_FOUND);
    } finally {
      client.close();
      server.forceShutdown();
    }
  },
});
