/**
 * Runtime.ReportCheckpoint against a real orchestrator: the test plays the
 * job's runtime with the job's own token (read from its Swarm service).
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  jobToken,
  runtimeClient,
  tokenMetadata,
  waitFor,
  type WireJob,
  withRunningJob,
} from "./helpers/client.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

type Checkpointed = WireJob & {
  lastCheckpointStep: number;
  lastCheckpointTier: string;
  lastCheckpointAtMs: number;
};

type RuntimeClient = ReturnType<typeof runtimeClient>;

/** "OK", or "<STATUS>: <details>" of a failed call. */
function outcome(err: grpc.ServiceError | null): string {
  return err ? `${grpc.status[err.code]}: ${err.details}` : "OK";
}

/** Runtime.ReportCheckpoint with the job's token; resolves with {@link outcome}. */
function reportCheckpoint(
  rt: RuntimeClient,
  token: string,
  req: Record<string, unknown>,
): Promise<string> {
  return new Promise((resolve) =>
    rt.ReportCheckpoint(
      req,
      tokenMetadata(token),
      { deadline: Date.now() + 5000 },
      (err: grpc.ServiceError | null) => resolve(outcome(err)),
    )
  );
}

/** Runtime.ReportResult sending `messages`; resolves with {@link outcome}. */
function reportResult(
  rt: RuntimeClient,
  token: string,
  messages: Record<string, unknown>[],
): Promise<string> {
  return new Promise((resolve) => {
    const call = rt.ReportResult(
      tokenMetadata(token),
      { deadline: Date.now() + 5000 },
      (err: grpc.ServiceError | null) => resolve(outcome(err)),
    );
    for (const m of messages) call.write(m);
    call.end();
  });
}

Deno.test({
  name: "ReportCheckpoint checks the token and the fields, and GetJob shows the newest step",
  ...opts,
  fn: () =>
    withRunningJob(["sleep", "30"], async ({ stack, c, rt, id, token }) => {
      const report = (req: Record<string, unknown>, token: string) =>
        reportCheckpoint(rt, token, req);
      assert.equal(Number((await c.getJob(id) as Checkpointed).lastCheckpointAtMs), 0);

      assert.match(
        await report({ jobId: id, step: 5, tier: "l1" }, "wrong"),
        /^UNAUTHENTICATED/,
      );
      assert.match(
        await report({ jobId: id, step: 1e12, tier: "l1" }, token),
        /^INVALID_ARGUMENT: step:/,
      );
      assert.match(
        await report({ jobId: id, step: 5, tier: "disk" }, token),
        /^INVALID_ARGUMENT: tier:/,
      );
      assert.match(
        await report({ jobId: id, step: 5, tier: "l1", location: "x".repeat(2000) }, token),
        /^INVALID_ARGUMENT: location:/,
      );
      // Nothing refused was recorded.
      assert.equal(Number((await c.getJob(id) as Checkpointed).lastCheckpointAtMs), 0);

      const before = Date.now();
      assert.equal(
        await report({ jobId: id, step: 5, tier: "l1", location: "/x" }, token),
        "OK",
      );
      // A late upload of an older step does not move the record back.
      assert.equal(await report({ jobId: id, step: 3, tier: "l2" }, token), "OK");
      assert.equal(await report({ jobId: id, step: 5, tier: "l2" }, token), "OK");
      const job = await c.getJob(id) as Checkpointed;
      assert.equal(Number(job.lastCheckpointStep), 5);
      assert.equal(job.lastCheckpointTier, "l2");
      const at = Number(job.lastCheckpointAtMs);
      assert.ok(at >= before && at <= Date.now(), `recorded at ${at}`);
      // Persisted on the job record (what expiry reads).
      assert.deepEqual(
        stack.orch.manager.list({ limit: 10 }).find((j) => j.id === id)
          ?.lastCheckpoint,
        { step: 5, tier: "l2", atMs: at },
      );
      await c.cancel(id);
    }),
});

Deno.test({
  name: "ReportResult refuses a second header with INVALID_ARGUMENT and stores nothing",
  ...opts,
  fn: () =>
    withRunningJob(["sleep", "30"], async ({ c, rt, id, token }) => {
      const header = { header: { jobId: id, kind: "pickle", totalBytes: 3 } };
      const got = await reportResult(rt, token, [header, header]);
      assert.match(got, /^INVALID_ARGUMENT: chunk: every message after the header/);
      assert.equal((await c.getJob(id) as WireJob & { hasResult: boolean }).hasResult, false);
      await c.unary("CancelJob", { jobId: id });
    }),
});

Deno.test({
  name: "a job that ended refuses a new result or checkpoint from its token (FAILED_PRECONDITION)",
  ...opts,
  fn: () =>
    withRunningJob(["sleep", "30"], async ({ c, rt, id, token }) => {
      await c.cancel(id);
      await waitFor("CANCELLED", () => c.getJob(id), (j) => j.state === "CANCELLED");
      const result = await reportResult(rt, token, [
        { header: { jobId: id, kind: "pickle", totalBytes: 3 } },
        { chunk: new Uint8Array([1, 2, 3]) },
      ]);
      assert.match(result, /^FAILED_PRECONDITION: job j-[0-9a-f]+ already ended \(CANCELLED\)/);
      const checkpoint = await reportCheckpoint(rt, token, { jobId: id, step: 7, tier: "l1" });
      assert.match(checkpoint, /^FAILED_PRECONDITION: job j-[0-9a-f]+ already ended/);
      const job = await c.getJob(id) as Checkpointed & { hasResult: boolean };
      assert.equal(job.hasResult, false);
      assert.equal(Number(job.lastCheckpointAtMs), 0);
    }),
});

Deno.test({
  name: "a job token is its attempt's: once the next attempt runs, the earlier one's is refused",
  ...opts,
  fn: () =>
    withRunningJob(["sleep", "60"], async ({ stack, c, rt, id, token }) => {
      const docker = stack.orch.swarm.docker;
      assert.equal(await reportCheckpoint(rt, token, { jobId: id, step: 1, tier: "l1" }), "OK");
      // The container goes away: the orchestrator resumes the job in a new attempt.
      const [ctr] = await docker.listContainers({ filters: { label: [`cumulus.job=${id}`] } });
      await docker.getContainer(ctr.Id).remove({ force: true });
      await waitFor(
        "attempt 2 running",
        () => c.getJob(id),
        (j) => j.state === "RUNNING" && Number(j.attempts) === 2,
      );
      const second = await waitFor(
        "attempt 2's token",
        () => jobToken(docker, id),
        (t) => t !== token,
      );
      assert.match(
        await reportCheckpoint(rt, token, { jobId: id, step: 2, tier: "l1" }),
        /^UNAUTHENTICATED: job token of attempt 1 of j-[0-9a-f]+, which has ended \(attempt 2 is the current one\)/,
      );
      assert.equal(await reportCheckpoint(rt, second, { jobId: id, step: 3, tier: "l1" }), "OK");
      const job = await c.getJob(id) as Checkpointed;
      assert.equal(Number(job.lastCheckpointStep), 3);
      await c.cancel(id);
    }),
});
