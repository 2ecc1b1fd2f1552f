/**
 * Operability endpoints of a real orchestrator: the standard gRPC health
 * service and the Prometheus /metrics page.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { loadHealthProto } from "../src/rpc/mod.ts";
import { spec, TestClient } from "./helpers/client.ts";
import { startStack } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "health: SERVING for known services, NOT_FOUND for others, NOT_SERVING on shutdown",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const Health = loadHealthProto();
    const h = new Health(stack.url, grpc.credentials.createInsecure()) as unknown as
      & grpc.Client
      & Record<string, CallableFunction>;
    const check = (service: string) =>
      new Promise<{ status: string }>((resolve, reject) =>
        h.Check({ service }, (e: unknown, r: { status: string }) => (e ? reject(e) : resolve(r)))
      );
    let stopped = false;
    try {
      assert.equal((await check("")).status, "SERVING");
      assert.equal((await check("cumulus.v1.Cumulus")).status, "SERVING");
      await assert.rejects(
        check("nope.v1.Nope"),
        (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND,
      );
      const statuses: string[] = [];
      const watch = h.Watch({ service: "" });
      const sawNotServing = new Promise<void>((resolve) => {
        watch.on("data", (r: { status: string }) => {
          statuses.push(r.status);
          if (r.status === "NOT_SERVING") resolve();
        });
        watch.on("error", () => resolve());
      });
      await new Promise((r) => setTimeout(r, 100));
      const stopping = stack.stop();
      stopped = true;
      await Promise.race([sawNotServing, new Promise((r) => setTimeout(r, 3000))]);
      await stopping;
      assert.deepEqual(statuses.slice(0, 2), ["SERVING", "NOT_SERVING"]);
    } finally {
      h.close();
      if (!stopped) await stack.stop();
    }
  },
});

Deno.test({
  name:
    "/metrics, with a user token, reports jobs by state, the queue, RPC counts and scheduling rounds",
  ...opts,
  fn: async () => {
    const stack = await startStack();
    const c = new TestClient(stack.url);
    try {
      const id = await c.submit(spec(["true"]));
      await c.watchAll(id);
      await c.getJob(id);
      const url = `http://127.0.0.1:${stack.orch.metricsPort}/metrics`;
      // A user token, as for every gRPC call; none or a wrong one is 401.
      for (const auth of [undefined, "Bearer cu_000000000000_" + "A".repeat(43)]) {
        const refused = await fetch(url, { headers: auth ? { authorization: auth } : {} });
        assert.equal(refused.status, 401);
        assert.match(await refused.text(), /cumulus login/);
      }
      const res = await fetch(url, { headers: { authorization: `Bearer ${stack.token}` } });
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.match(text, /^cumulus_jobs\{state="SUCCEEDED"\} 1$/m);
      assert.match(text, /^cumulus_queue_length 0$/m);
      assert.match(text, /^cumulus_rpc_total\{method="GetJob",code="OK"\} 1$/m);
      assert.match(text, /^cumulus_rpc_latency_ms_count\{method="SubmitJob"\} 1$/m);
      // The job was placed by at least one scheduling round, which was timed.
      assert.match(text, /^cumulus_schedule_round_busy_ms_count [1-9]\d*$/m);
      assert.match(text, /^cumulus_schedule_round_busy_ms_sum \d+\.\d{3}$/m);
      assert.equal((await fetch(`http://127.0.0.1:${stack.orch.metricsPort}/other`)).status, 404);
    } finally {
      c.close();
      await stack.stop();
    }
  },
});
