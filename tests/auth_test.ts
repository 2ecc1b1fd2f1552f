/**
 * Identity (issue 16, item 1): user tokens on a real orchestrator on
 * loopback. Unauthenticated calls are refused, a user reaches only their own
 * jobs (another user's job is indistinguishable from a missing one), the
 * token's user owns a job whatever the request says, revoked and expired
 * tokens are refused, only hashes are stored, and a user's queue is bounded.
 * @module
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { spec, TestClient, waitFor } from "./helpers/client.ts";
import { type Stack, startStack, TEST_ADMIN_USER } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function withUsers(
  fn: (s: Stack, admin: TestClient, a: TestClient, b: TestClient) => Promise<void>,
  env: Record<string, string> = {},
  maxConcurrentJobs?: number,
): Promise<void> {
  const stack = await startStack({ env, maxConcurrentJobs });
  const admin = new TestClient(stack.url);
  const a = new TestClient(stack.url, await stack.createToken("alice"));
  const b = new TestClient(stack.url, await stack.createToken("bob"));
  try {
    await fn(stack, admin, a, b);
  } finally {
    for (const c of [admin, a, b]) c.close();
    await stack.stop();
  }
}

/** The gRPC error a promise rejects with. */
async function rpcError(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error("the call succeeded");
}

/** The error a server stream (GetResult) ends with, or null when it ends well. */
function streamError(
  c: TestClient,
  method: string,
  req: unknown,
): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    const call = c.raw[method](req);
    call.on("data", () => {});
    call.on("error", (e: grpc.ServiceError) => resolve(e));
    call.on("end", () => resolve(null));
  });
}

Deno.test({
  name:
    "a call without a token, or with a wrong one, is UNAUTHENTICATED with a hint; no job is made",
  ...opts,
  fn: () =>
    withUsers(async (s, admin) => {
      const anon = new TestClient(s.url, "");
      const forged = new TestClient(s.url, `cu_000000000000_${"A".repeat(43)}`);
      try {
        for (const c of [anon, forged]) {
          const err = await rpcError(c.submit(spec(["true"])));
          assert.equal(err.code, grpc.status.UNAUTHENTICATED);
          assert.match(err.details, /run `cumulus login` or set CUMULUS_TOKEN/);
          assert.equal(
            (await rpcError(c.unary("ListJobs", {}))).code,
            grpc.status.UNAUTHENTICATED,
          );
          const watch = await streamError(c, "WatchJob", { jobId: "j-000000000000" });
          assert.equal(watch?.code, grpc.status.UNAUTHENTICATED);
        }
        const all = await admin.unary<{ jobs: unknown[] }>("ListJobs", {});
        assert.equal(all.jobs.length, 0);
      } finally {
        anon.close();
        forged.close();
      }
    }),
});

Deno.test({
  name: "a user cannot get, watch, cancel or fetch the result of another user's job; an admin can",
  ...opts,
  fn: () =>
    withUsers(async (_s, admin, alice, bob) => {
      const done = await bob.submit(spec(["sh", "-c", "echo secret-line"], { env: { K: "v" } }));
      await bob.watchAll(done);
      const running = await bob.submit(spec(["sleep", "60"]));
      const missing = "j-0123456789ab";
      const notFound = async (id: string) => {
        const errs = [
          await rpcError(alice.getJob(id)),
          await rpcError(alice.cancel(id)),
          await rpcError(alice.watchAll(id)),
          await streamError(alice, "GetResult", { jobId: id }),
        ];
        for (const e of errs) assert.equal(e?.code, grpc.status.NOT_FOUND, e?.details);
        return errs.map((e) => e!.details);
      };
      // Bob's jobs read exactly as a job that does not exist.
      assert.deepEqual(
        (await notFound(done)).map((m) => m.replace(done, "ID")),
        (await notFound(missing)).map((m) => m.replace(missing, "ID")),
      );
      await notFound(running);
      const listed = await alice.unary<{ jobs: { id: string }[] }>("ListJobs", {});
      assert.deepEqual(listed.jobs, []);
      // Even asking for bob's jobs by name lists only alice's own (none).
      const asked = await alice.unary<{ jobs: unknown[] }>("ListJobs", { user: "bob" });
      assert.deepEqual(asked.jobs, []);
      assert.equal((await bob.getJob(running)).state !== "", true);
      // The admin sees, watches and cancels them; env values stay the owner's.
      const seen = await admin.unary<{ spec: { env: Record<string, string> } }>("GetJob", {
        jobId: done,
      });
      assert.notEqual(seen.spec.env.K, "v");
      const own = await bob.unary<{ spec: { env: Record<string, string> } }>("GetJob", {
        jobId: done,
      });
      assert.equal(own.spec.env.K, "v");
      const { lines } = await admin.watchAll(done);
      assert.ok(lines.some((l) => l.text === "secret-line"));
      const all = await admin.unary<{ jobs: { id: string }[] }>("ListJobs", { user: "bob" });
      assert.deepEqual(all.jobs.map((j) => j.id).sort(), [done, running].sort());
      assert.equal((await admin.cancel(running)).job.state, "CANCELLED");
    }),
});

Deno.test({
  name: "a spoofed user field is ignored: the job belongs to the token's user",
  ...opts,
  fn: () =>
    withUsers(async (_s, admin, alice) => {
      const id = await alice.submit(spec(["true"], { user: "bob" }));
      const job = await alice.unary<{ spec: { user: string } }>("GetJob", { jobId: id });
      assert.equal(job.spec.user, "alice");
      const mine = await admin.unary<{ jobs: { id: string }[] }>("ListJobs", { user: "alice" });
      assert.deepEqual(mine.jobs.map((j) => j.id), [id]);
      const bobs = await admin.unary<{ jobs: unknown[] }>("ListJobs", { user: "bob" });
      assert.deepEqual(bobs.jobs, []);
      const adminJob = await admin.submit(spec(["true"], { user: "someone" }));
      const aj = await admin.unary<{ spec: { user: string } }>("GetJob", { jobId: adminJob });
      assert.equal(aj.spec.user, TEST_ADMIN_USER);
    }),
});

Deno.test({
  name: "revoked and expired tokens are refused; only admins manage tokens",
  ...opts,
  fn: () =>
    withUsers(async (s, admin, alice) => {
      const who = await alice.unary<{ user: string; admin: boolean; tokenId: string }>(
        "WhoAmI",
        {},
      );
      assert.deepEqual([who.user, who.admin], ["alice", false]);
      // A user cannot mint tokens.
      const denied = await rpcError(alice.unary("CreateToken", { user: "mallory", admin: true }));
      assert.equal(denied.code, grpc.status.PERMISSION_DENIED);
      assert.equal(
        (await rpcError(alice.unary("ListTokens", {}))).code,
        grpc.status.PERMISSION_DENIED,
      );
      // Revoked by id: refused at once.
      await admin.unary("RevokeToken", { idOrUser: who.tokenId });
      const revoked = await rpcError(alice.unary("ListJobs", {}));
      assert.equal(revoked.code, grpc.status.UNAUTHENTICATED);
      assert.match(revoked.details, /revoked/);
      // Revoked by user name: every token of that user.
      const c1 = new TestClient(s.url, await s.createToken("carol"));
      const c2 = new TestClient(s.url, await s.createToken("carol"));
      const short = new TestClient(s.url, await s.createToken("dave", { expiresInS: 1 }));
      try {
        await c1.unary("ListJobs", {});
        const r = await admin.unary<{ revoked: unknown[] }>("RevokeToken", { idOrUser: "carol" });
        assert.equal(r.revoked.length, 2);
        for (const c of [c1, c2]) {
          assert.equal((await rpcError(c.unary("ListJobs", {}))).code, grpc.status.UNAUTHENTICATED);
        }
        // Expired: accepted before its time, refused after.
        await short.unary("ListJobs", {});
        const err = await waitFor(
          "the token to expire",
          () => rpcError(short.unary("ListJobs", {})).catch(() => null),
          (e) => e !== null,
          10_000,
        );
        assert.equal(err!.code, grpc.status.UNAUTHENTICATED);
        assert.match(err!.details, /expired/);
        const listed = await admin.unary<{ tokens: { user: string; revokedAtMs: number }[] }>(
          "ListTokens",
          {},
        );
        assert.equal(
          listed.tokens.filter((t) => t.user === "carol" && t.revokedAtMs > 0).length,
          2,
        );
        assert.ok(!JSON.stringify(listed).includes("cu_"), "a listing carries a secret");
      } finally {
        for (const c of [c1, c2, short]) c.close();
      }
    }),
});

Deno.test({
  name: "tokens are stored hashed: the store files never contain a secret",
  ...opts,
  fn: () =>
    withUsers(async (s) => {
      const secret = await s.createToken("erin");
      // cu_<12 hex id>_<43 base64url>: the secret part may itself hold "_".
      const id = secret.slice(3, 15);
      const secretPart = (token: string) => token.slice(16);
      const stored = new TextDecoder("latin1").decode(
        new Uint8Array([
          ...await Deno.readFile(`${s.dataDir}/jobs.db`),
          ...await Deno.readFile(`${s.dataDir}/jobs.db-wal`).catch(() => new Uint8Array()),
        ]),
      );
      assert.ok(stored.includes(id), "the token's id is not in the store");
      assert.equal(secretPart(secret).length, 43);
      assert.ok(!stored.includes(secretPart(secret)), "the store holds the token's secret");
      assert.ok(!stored.includes(secretPart(s.token)), "the store holds the admin secret");
    }),
});

Deno.test({
  name: "a user's queued jobs are capped by max_queued_jobs_per_user; other users still submit",
  ...opts,
  fn: () =>
    withUsers(
      async (_s, admin, alice, bob) => {
        const first = await alice.submit(spec(["sleep", "60"]));
        await waitFor("the first job to leave the queue", () =>
          alice.getJob(first), (j) =>
          j.state !== "QUEUED");
        await alice.submit(spec(["true"]));
        await alice.submit(spec(["true"]));
        const err = await rpcError(alice.submit(spec(["true"])));
        assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
        assert.match(err.details, /max_queued_jobs_per_user/);
        const bobs = await bob.submit(spec(["true"]));
        assert.equal((await bob.getJob(bobs)).state, "QUEUED");
        const all = await admin.unary<{ jobs: { id: string }[] }>("ListJobs", {});
        for (const j of all.jobs) {
          await admin.cancel(j.id).catch(() => {});
        }
      },
      { CUMULUS_MAX_QUEUED_JOBS_PER_USER: "2" },
      1,
    ),
});
