/**
 * Per-connection and server-wide bounds of a real orchestrator process (issue
 * 14, item 4): request and reply message sizes, calls per HTTP/2 connection,
 * and the number of open WatchJob and StreamLogs streams, each answered with a
 * clear status while health stays SERVING and RSS bounded.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { removeLeftovers } from "../bench/fuzz.ts";
import { loadCumulusProto, loadHealthProto, MAX_DETAILS_CHARS } from "../src/rpc/mod.ts";
import { MAX_LIST_PAGE_BYTES } from "../src/orchestrator/stream_limits.ts";
import { connectDocker, SwarmClient } from "../src/swarm/mod.ts";
import {
  authInterceptor,
  jobToken,
  spec,
  TestClient,
  tokenMetadata,
  waitFor,
} from "./helpers/client.ts";
import { freePort, type OrchestratorProcess, spawnOrchestrator } from "./helpers/process.ts";
import { JOB_IMAGE, SWARM_SOCKET, TEST_ADMIN_TOKEN } from "./helpers/stack.ts";

type RawClient = grpc.Client & Record<string, CallableFunction>;
type Duplex = grpc.ClientDuplexStream<unknown, unknown>;
type ConnectionKind = "Cumulus" | "Runtime" | "Health";

const MAX_WATCH = 40;
const MAX_LOG = 4;
const PER_CONNECTION = 16;

/** A client on a connection of its own (grpc-js otherwise shares one per target). */
function ownConnection(kind: ConnectionKind, url: string): RawClient {
  const { Cumulus, Runtime } = loadCumulusProto();
  const Ctor = kind === "Cumulus" ? Cumulus : kind === "Runtime" ? Runtime : loadHealthProto();
  return new Ctor(url, grpc.credentials.createInsecure(), {
    interceptors: kind === "Cumulus" ? [authInterceptor(TEST_ADMIN_TOKEN)] : [],
    "grpc.use_local_subchannel_pool": 1,
    "grpc.max_receive_message_length": -1,
  }) as unknown as RawClient;
}

function rssKiB(pid: number): number {
  const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) : 0;
}

/** A WatchJob stream and how it went: "open" once its first event came. */
interface Watch {
  call: grpc.ClientReadableStream<unknown>;
  state: Promise<"open" | grpc.ServiceError>;
}

function watch(client: RawClient, jobId: string): Watch {
  const call = client.WatchJob({ jobId, noLogs: true }) as grpc.ClientReadableStream<unknown>;
  const state = new Promise<"open" | grpc.ServiceError>((resolve) => {
    call.once("data", () => resolve("open"));
    call.on("error", (e: grpc.ServiceError) => resolve(e));
  });
  return { call, state };
}

/** Health/Check; resolves with the status and the round trip. */
async function healthCheck(h: RawClient): Promise<{ status: string; ms: number }> {
  const t0 = performance.now();
  const status = await new Promise<string>((resolve) =>
    h.Check(
      { service: "" },
      { deadline: Date.now() + 10_000 },
      (e: grpc.ServiceError | null, r: { status: string }) =>
        resolve(e ? `error ${e.code}: ${e.details}` : r.status),
    )
  );
  return { status, ms: performance.now() - t0 };
}

/**
 * Opens `n` WatchJob streams over `clients` (round robin); a stream refused
 * while earlier ones are still being released is retried, so the result is
 * exactly `n` open streams or a failure.
 */
async function openWatches(clients: RawClient[], jobId: string, n: number): Promise<Watch[]> {
  const open: Watch[] = [];
  const until = Date.now() + 60_000;
  while (open.length < n) {
    const batch = Array.from(
      { length: n - open.length },
      (_, i) => watch(clients[(open.length + i) % clients.length], jobId),
    );
    for (const w of batch) {
      const s = await w.state;
      if (s === "open") open.push(w);
      else if (s.code !== grpc.status.RESOURCE_EXHAUSTED || Date.now() > until) {
        throw new Error(`watch: ${s.code} ${s.details}`);
      }
    }
    if (open.length < n) await new Promise((r) => setTimeout(r, 100));
  }
  return open;
}

/** What each test gets: the process, its target jobs and connections it owns. */
interface Bounded {
  orch: OrchestratorProcess;
  /** A running job and a queued one behind it ("" when started without jobs). */
  jobs: { running: string; queued: string };
  /** A health client on its own connection. */
  health: RawClient;
  /** A new client on a connection of its own, closed after the test. */
  connect(kind: ConnectionKind): RawClient;
}

/**
 * Runs `fn` against an orchestrator process with small bounds and, unless
 * `withJobs` is false, a running target job and a queued one behind it
 * (MAX_CONCURRENT_JOBS=1). The process must still be alive when `fn` is done.
 * Connections are closed only after that check: a client that closes its
 * connection after many calls can hit Deno's HTTP/2 abort (denoland/deno#36788;
 * docs/BENCHMARKS.md, "Fuzz after keepalive (issue 14)"), which this test does
 * not measure.
 */
async function withOrchestrator(fn: (b: Bounded) => Promise<void>, withJobs = true): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "cumulus-bounds-" });
  const orch = await spawnOrchestrator(dataDir, freePort(), {
    MAX_CONCURRENT_JOBS: "1",
    CUMULUS_STOP_GRACE_PERIOD: "1",
    CUMULUS_MAX_WATCH_STREAMS: String(MAX_WATCH),
    CUMULUS_MAX_LOG_STREAMS: String(MAX_LOG),
    CUMULUS_MAX_STREAMS_PER_CONNECTION: String(PER_CONNECTION),
  });
  const c = new TestClient(orch.url);
  const owned: RawClient[] = [];
  const connect = (kind: ConnectionKind) => {
    const client = ownConnection(kind, orch.url);
    owned.push(client);
    return client;
  };
  const ids: string[] = [];
  try {
    if (withJobs) {
      ids.push(
        await c.submit(spec(["sleep", "600"], { image: JOB_IMAGE, name: "bounds-running" })),
      );
      ids.push(await c.submit(spec(["true"], { image: JOB_IMAGE, name: "bounds-queued" })));
    }
    const jobs = { running: ids[0] ?? "", queued: ids[1] ?? "" };
    await fn({ orch, jobs, health: connect("Health"), connect });
    const ended = await Promise.race([orch.status, Promise.resolve(null)]);
    assert.equal(ended, null, `the orchestrator process ended:\n${orch.stderr().slice(-2000)}`);
  } finally {
    // Cancelling removes the running job's Swarm service.
    await Promise.all(ids.map((id) => c.cancel(id).catch(() => {})));
    c.close();
    for (const client of owned) client.close();
    orch.child.kill("SIGTERM");
    await orch.status;
    // Also when the orchestrator died before it could cancel them.
    await removeLeftovers(dataDir, ids);
    await Deno.remove(dataDir, { recursive: true });
  }
}

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "a request over 8 MiB answers RESOURCE_EXHAUSTED naming both sizes; one under it gets " +
    "its own status with a clipped message",
  ...opts,
  fn: () =>
    withOrchestrator(async ({ health, connect }) => {
      const c = connect("Cumulus");
      const getJob = (jobId: string) =>
        new Promise<grpc.ServiceError | null>((resolve) =>
          c.GetJob({ jobId }, { deadline: Date.now() + 30_000 }, resolve)
        );
      const big = await getJob("x".repeat(9 * 1024 * 1024));
      assert.equal(big?.code, grpc.status.RESOURCE_EXHAUSTED, big?.details);
      assert.match(big!.details, /larger than max \(\d+ vs\.? 8388608\)/);
      // Just under the limit reaches the handler, which refuses the id itself, with a message
      // short enough for a trailer (echoing the whole id made the call end CANCELLED).
      const under = await getJob("x".repeat(7 * 1024 * 1024));
      assert.equal(under?.code, grpc.status.NOT_FOUND, under?.details.slice(0, 200));
      assert.match(under!.details, /^job x+\.\.\. \(7340046 characters in all\)$/);
      assert.ok(under!.details.length <= MAX_DETAILS_CHARS + 100, `${under!.details.length} chars`);
      assert.equal((await healthCheck(health)).status, "SERVING");
    }, false),
});

Deno.test({
  name: `WatchJob past max_watch_streams (${MAX_WATCH}) answers RESOURCE_EXHAUSTED naming it, ` +
    "health stays SERVING and RSS bounded under 200 more, and a closed stream frees its place",
  ...opts,
  fn: () =>
    withOrchestrator(async ({ orch, jobs, health, connect }) => {
      const pid = orch.child.pid;
      // Four connections of 10: under the per-connection bound, so only the server-wide one acts.
      const clients = Array.from({ length: 4 }, () => connect("Cumulus"));
      const extra = connect("Cumulus");
      const rssStart = rssKiB(pid);
      const open = await openWatches(clients, jobs.running, MAX_WATCH);
      const refused = await watch(extra, jobs.queued).state;
      assert.notEqual(refused, "open", "watch past the limit was served");
      const err = refused as grpc.ServiceError;
      assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED, err.details);
      assert.match(err.details, new RegExp(`${MAX_WATCH} streams are open.*max_watch_streams`));

      // A flood while at the limit: 200 more attempts, 50 at a time.
      const codes: Record<number, number> = {};
      for (let i = 0; i < 4; i++) {
        const states = await Promise.all(
          Array.from({ length: 50 }, (_, k) => watch(clients[k % 4], jobs.running).state),
        );
        for (const s of states) {
          const code = s === "open" ? grpc.status.OK : s.code;
          codes[code] = (codes[code] ?? 0) + 1;
        }
      }
      assert.deepEqual(codes, { [grpc.status.RESOURCE_EXHAUSTED]: 200 });
      const h = await healthCheck(health);
      const rssAtLimit = rssKiB(pid);
      console.log(
        `${MAX_WATCH} watches open + 200 refused: health ${h.status} in ${h.ms.toFixed(1)} ms, ` +
          `RSS ${(rssStart / 1024).toFixed(0)} → ${(rssAtLimit / 1024).toFixed(0)} MB`,
      );
      assert.equal(h.status, "SERVING");
      assert.ok(h.ms < 2000, `health answered in ${h.ms.toFixed(0)} ms`);
      assert.ok(
        rssAtLimit < rssStart + 150 * 1024,
        `rss grew more than 150 MB: ${rssStart} → ${rssAtLimit} KiB`,
      );

      // One stream ends: a new one is served again (its place is released asynchronously).
      open.shift()!.call.cancel();
      open.push(...await openWatches([extra], jobs.queued, 1));
      assert.equal(open.length, MAX_WATCH);
      for (const w of open) w.call.cancel();
    }),
});

Deno.test({
  name: `StreamLogs past max_log_streams (${MAX_LOG}) answers RESOURCE_EXHAUSTED naming it; ` +
    "an ended stream frees its place",
  ...opts,
  fn: () =>
    withOrchestrator(async ({ orch, jobs, health, connect }) => {
      const c = new TestClient(orch.url);
      const clients = Array.from({ length: MAX_LOG + 1 }, () => connect("Runtime"));
      const held: Duplex[] = [];
      try {
        const job = await waitFor(
          "RUNNING",
          () => c.getJob(jobs.running),
          (j) => j.state === "RUNNING",
        );
        // The test plays the job's runtime: it needs the token the job was given.
        const md = tokenMetadata(
          await jobToken(new SwarmClient(connectDocker(SWARM_SOCKET)).docker, jobs.running),
        );
        const batch = { jobId: jobs.running, attempt: job.attempts, firstIndex: 0, texts: ["x"] };
        /** Opens a stream and sends one batch: "open" once acked, else the error. */
        const stream = (client: RawClient) => {
          const call = client.StreamLogs(md) as Duplex;
          const state = new Promise<"open" | grpc.ServiceError>((resolve) => {
            call.once("data", () => resolve("open"));
            call.on("error", resolve);
          });
          call.write(batch);
          return { call, state };
        };
        for (let i = 0; i < MAX_LOG; i++) {
          const s = stream(clients[i]);
          assert.equal(await s.state, "open");
          held.push(s.call);
        }
        const refused = await stream(clients[MAX_LOG]).state;
        assert.notEqual(refused, "open", "stream past the limit was served");
        const err = refused as grpc.ServiceError;
        assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED, err.details);
        assert.match(err.details, new RegExp(`${MAX_LOG} streams are open.*max_log_streams`));
        assert.equal((await healthCheck(health)).status, "SERVING");

        // One runtime closes its stream as it does when its command exited: a place frees.
        const ended = held.shift()!;
        const closed = new Promise((resolve) => ended.on("status", resolve));
        ended.end();
        await closed;
        const until = Date.now() + 30_000;
        for (;;) {
          const s = stream(clients[MAX_LOG]);
          const state = await s.state;
          if (state === "open") {
            held.push(s.call);
            break;
          }
          assert.equal(state.code, grpc.status.RESOURCE_EXHAUSTED, state.details);
          assert.ok(Date.now() < until, "no StreamLogs place freed after a stream ended");
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        for (const h of held) h.cancel();
        c.close();
      }
    }),
});

Deno.test({
  name: `one connection holds at most max_streams_per_connection (${PER_CONNECTION}) calls: ` +
    "the next call waits (grpc-js queues it) and runs once one ends; other connections are served",
  ...opts,
  fn: () =>
    withOrchestrator(async ({ jobs, health, connect }) => {
      const c = connect("Cumulus");
      const open = await openWatches([c], jobs.running, PER_CONNECTION);
      const queued = watch(c, jobs.running);
      // A unary call on the full connection waits too, until its deadline.
      const unary = await new Promise<grpc.ServiceError | null>((resolve) =>
        c.GetJob({ jobId: jobs.running }, { deadline: Date.now() + 1500 }, resolve)
      );
      assert.equal(unary?.code, grpc.status.DEADLINE_EXCEEDED, unary?.details);
      // Meanwhile other connections are served.
      assert.equal((await healthCheck(health)).status, "SERVING");
      // 1.5 s later, the watch past the bound has still not been served.
      assert.equal(await Promise.race([queued.state, Promise.resolve("waiting")]), "waiting");
      open.shift()!.call.cancel();
      assert.equal(await queued.state, "open");
      open.push(queued);
      for (const w of open) w.call.cancel();
    }),
});

Deno.test({
  name: "a ListJobs page of big jobs is cut under the reply bound, with a token for the rest",
  ...opts,
  fn: () =>
    withOrchestrator(async ({ orch, jobs, connect }) => {
      const c = new TestClient(orch.url);
      const lister = connect("Cumulus");
      type Page = { jobs: { id: string }[]; nextPageToken: string };
      const list = (pageToken: string) =>
        new Promise<Page>((resolve, reject) =>
          lister.ListJobs(
            { pageSize: 1000, pageToken },
            { deadline: Date.now() + 30_000 },
            (e: grpc.ServiceError | null, r: Page) => e ? reject(e) : resolve(r),
          )
        );
      const big: string[] = [];
      try {
        // 60 queued jobs with an argv near its 128 KiB bound: more than one page's budget.
        const argv = ["sh", "-c", `: ${"x".repeat(120_000)}`];
        const ids = new Set([jobs.running, jobs.queued]);
        for (let i = 0; i < 60; i++) {
          const id = await c.submit(spec(argv, { image: JOB_IMAGE }));
          big.push(id);
          ids.add(id);
        }
        const first = await list("");
        assert.ok(first.jobs.length < ids.size, `one page held all ${first.jobs.length} jobs`);
        assert.ok(first.jobs.length * argv[2].length * 3 <= MAX_LIST_PAGE_BYTES);
        assert.notEqual(first.nextPageToken, "");
        const seen = first.jobs.map((j) => j.id);
        for (let token = first.nextPageToken; token;) {
          const page = await list(token);
          seen.push(...page.jobs.map((j) => j.id));
          token = page.nextPageToken;
        }
        assert.equal(seen.length, ids.size);
        assert.deepEqual(new Set(seen), ids);
      } finally {
        // Before the running target goes: none of these may start and leave a service behind.
        for (const id of big) await c.cancel(id).catch(() => {});
        c.close();
      }
    }),
});
