/**
 * gRPC handlers of the `Cumulus` (clients) and `Runtime` (job containers)
 * services. Handlers parse wire messages at the edge, call the job manager,
 * and map every error through `src/rpc`; nothing thrown here can take the
 * process down.
 * @module
 */
import { checkAttemptToken } from "./job_token.ts";
import type * as grpc from "@grpc/grpc-js";
import { once } from "node:events";
import {
  CumulusError,
  InvalidArgumentError,
  JOB_STATES,
  type JobSpec,
  type JobState,
  newToken,
  NotFoundError,
  parseCheckpointReport,
  parseJobSpec,
  type RawCheckpointReport,
  type RawJobSpec,
  ResourceExhaustedError,
  type SpecLimits,
  UnauthenticatedError,
  USER_NAME_RE,
} from "../core/mod.ts";
import { encodeLinesEvent, jobToWire, lineToWire, toRpcError } from "../rpc/mod.ts";
import type { JobStore, TokenRecord, TokenStore } from "../store/mod.ts";
import type { LogHub } from "../logs/mod.ts";
import type { SwarmClient } from "../swarm/mod.ts";
import type { JobManager } from "./job_manager.ts";
import {
  type L2Access,
  L2AccessDeniedError,
  type L2Request,
  PRESIGN_EXPIRES_S,
} from "./l2_access.ts";
import { type Principal, principalOf, requireAdmin } from "./auth.ts";
import { partitionJob, type PartitionKeeper } from "./partitions.ts";
import { resultFiles, resultRemovedMessage } from "./result_retention.ts";
import { cutToBudget, listedJobBytes, MAX_LIST_PAGE_BYTES } from "./stream_limits.ts";

/** What the handlers need. */
export interface HandlerDeps {
  manager: JobManager;
  /** Job logs, for lines the job's runtime streams in. */
  logs: LogHub;
  store: JobStore;
  /** User tokens (admin calls). */
  tokens: TokenStore;
  /** Clock for token creation. */
  now: () => number;
  swarm: SwarmClient;
  /** Worker agents: inventory and partitions. */
  partitions: PartitionKeeper;
  limits: SpecLimits;
  maxBundleBytes: number;
  maxResultBytes: number;
  /** Data directories. */
  tmpDir: string;
  bundleDir: string;
  resultDir: string;
  /** The orchestrator's result_retention in seconds, for jobs stored without their own. */
  resultRetention: number;
  log: (msg: string) => void;
  /** Counts RPCs and their latencies (for /metrics). */
  observe: (method: string, code: string, ms: number) => void;
  /** Presigned L2 URLs and checkpoint keys for jobs (absent: both refused). */
  l2?: L2Access;
}

const CHUNK = 1024 * 1024;
const TOKEN_KEY = "x-cumulus-job-token";

type Unary<Req, Res> = (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>;

function errCode(err: unknown): string {
  return err instanceof CumulusError ? err.code : "INTERNAL";
}

function report(d: HandlerDeps, method: string, err: unknown): grpc.ServiceError {
  if (!(err instanceof CumulusError)) {
    d.log(`${method}: unexpected error: ${(err as Error)?.stack ?? err}`);
  }
  return toRpcError(err) as unknown as grpc.ServiceError;
}

/** Wraps a unary handler: its answer or error (mapped through src/rpc), timed for metrics. */
export function unary<Req, Res>(d: HandlerDeps, method: string, fn: Unary<Req, Res>) {
  return (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
    const t0 = performance.now();
    // Through a promise: a handler that throws before returning one (a refused
    // token) still answers with its status, not UNKNOWN.
    Promise.resolve().then(() => fn(call.request, call)).then(
      (res) => {
        d.observe(method, "OK", performance.now() - t0);
        cb(null, res);
      },
      (err) => {
        d.observe(method, errCode(err), performance.now() - t0);
        cb(report(d, method, err));
      },
    );
  };
}

function requireId(id: unknown, field = "job_id"): string {
  if (typeof id !== "string" || id === "") throw new InvalidArgumentError(field, "is required");
  if (!/^j-[0-9a-f]{12}$/.test(id)) throw new NotFoundError(`job ${id} not found`);
  return id;
}

/** Whether `p` may see `job` (its owner, or an admin). */
function mayAccess(p: Principal, job: { spec: { user: string } }): boolean {
  return p.admin || job.spec.user === p.user;
}

/**
 * The caller's job `jobId`. Another user's job is NOT_FOUND with the very
 * message of a missing one, so ids cannot be probed for existence.
 */
function ownedJobId(d: HandlerDeps, call: object, jobId: unknown): string {
  const id = requireId(jobId);
  const job = d.store.get(id);
  if (!job || !mayAccess(principalOf(call), job)) throw new NotFoundError(`job ${id} not found`);
  return id;
}

function tokenToWire(t: TokenRecord) {
  return {
    id: t.id,
    user: t.user,
    admin: t.admin,
    createdAtMs: t.createdAt,
    expiresAtMs: t.expiresAt,
    revokedAtMs: t.revokedAt,
  };
}

async function writeWithBackpressure(
  call: grpc.ServerWritableStream<unknown, unknown>,
  msg: unknown,
  signal: AbortSignal,
): Promise<void> {
  if (call.write(msg)) return;
  if (signal.aborted) return;
  const ac = new AbortController();
  const stop = () => ac.abort();
  signal.addEventListener("abort", stop, { once: true });
  try {
    await once(call as unknown as NodeJS.EventEmitter, "drain", { signal: ac.signal });
  } catch {
    // Aborted: the client went away.
  } finally {
    signal.removeEventListener("abort", stop);
  }
}

function sendStreamError(
  call: grpc.ServerWritableStream<unknown, unknown>,
  err: grpc.ServiceError,
) {
  call.emit("error", err);
}

/** A server-streaming handler's body: writes to `call` until done or `signal` aborts. */
export type StreamBody<Req> = (
  req: Req,
  call: grpc.ServerWritableStream<Req, unknown>,
  signal: AbortSignal,
) => Promise<void>;

/**
 * A server-streaming handler: `signal` aborts when the client goes away, the
 * stream ends when `fn` returns, and whatever `fn` throws becomes the
 * stream's status (nothing is written to a client that left).
 */
export function serverStream<Req>(d: HandlerDeps, method: string, fn: StreamBody<Req>) {
  return async (call: grpc.ServerWritableStream<Req, unknown>) => {
    const ac = new AbortController();
    call.on("cancelled", () => ac.abort());
    call.on("close", () => ac.abort());
    try {
      await fn(call.request, call, ac.signal);
      if (!ac.signal.aborted) call.end();
    } catch (err) {
      if (!ac.signal.aborted) {
        sendStreamError(
          call as grpc.ServerWritableStream<unknown, unknown>,
          report(d, method, err),
        );
      }
    }
  };
}

/** A received upload: its temporary file (the callee moves or removes it) and size. */
export interface Upload {
  path: string;
  bytes: number;
}

/** What one client-streaming upload call does with its messages. */
export interface UploadSteps<H, Res> {
  /** What the first message carries ("spec", "header"), for error messages. */
  first: string;
  /**
   * Parses the first message (throws to refuse the call); `call` carries the
   * metadata, `fail` ends the call early from elsewhere.
   */
  header(
    msg: Record<string, unknown>,
    call: { metadata: grpc.Metadata },
    fail: (err: unknown) => void,
  ): H;
  /** Most chunk bytes the upload may carry. */
  maxBytes: number;
  /** The error for an upload past `maxBytes` (`size` describes what was seen). */
  tooLarge(header: H, size: string): Error;
  /** Awaited once the client half-closed, before `finish` (a call that ended meanwhile stops). */
  ready?(header: H): Promise<void>;
  /** Takes the upload (null when no chunk came). */
  finish(header: H, upload: Upload | null): Promise<Res>;
}

/**
 * A client-streaming upload (a header message, then `chunk`s): chunks go to
 * a temporary file as they arrive, past `maxBytes` the call is refused, a
 * failed or abandoned call leaves no file, and the answer is `finish`'s.
 */
export function upload<H, Res>(d: HandlerDeps, method: string, steps: UploadSteps<H, Res>) {
  return (
    call: grpc.ServerReadableStream<Record<string, unknown>, Res>,
    cb: grpc.sendUnaryData<Res>,
  ) => {
    const t0 = performance.now();
    let header: { value: H } | null = null;
    let done = false;
    let bytes = 0;
    let tmpPath = "";
    let tmp: Deno.FsFile | null = null;
    const cleanup = () => {
      try {
        tmp?.close();
      } catch { /* already closed */ }
      tmp = null;
      if (tmpPath) Deno.remove(tmpPath).catch(() => {});
      tmpPath = "";
    };
    const fail = (err: unknown) => {
      if (done) return;
      done = true;
      cleanup();
      d.observe(method, errCode(err), performance.now() - t0);
      cb(report(d, method, err));
    };
    call.on("data", (msg: Record<string, unknown>) => {
      if (done) return;
      try {
        if (!header) {
          header = { value: steps.header(msg, call, fail) };
          return;
        }
        const chunk = msg.chunk;
        if (msg.payload !== "chunk" || !(chunk instanceof Uint8Array)) {
          throw new InvalidArgumentError(
            "chunk",
            `every message after the ${steps.first} must be a chunk`,
          );
        }
        bytes += chunk.length;
        if (bytes > steps.maxBytes) {
          throw steps.tooLarge(header.value, `more than ${steps.maxBytes}`);
        }
        if (!tmp) {
          tmpPath = `${d.tmpDir}/upload-${crypto.randomUUID()}`;
          tmp = Deno.openSync(tmpPath, { write: true, createNew: true });
        }
        let off = 0;
        while (off < chunk.length) off += tmp.writeSync(chunk.subarray(off));
      } catch (err) {
        fail(err);
      }
    });
    call.on("end", async () => {
      if (done) return;
      try {
        if (!header) {
          throw new InvalidArgumentError(steps.first, "missing: the stream carried none");
        }
        tmp?.close();
        tmp = null;
        await steps.ready?.(header.value);
        if (done) return;
        const path = tmpPath;
        const res = await steps.finish(header.value, path ? { path, bytes } : null);
        tmpPath = ""; // taken by finish
        if (done) return;
        done = true;
        d.observe(method, "OK", performance.now() - t0);
        cb(null, res);
      } catch (err) {
        fail(err);
      }
    });
    // The client went away mid-upload: nothing was recorded; drop the partial file.
    const gone = () => {
      done = true;
      cleanup();
    };
    call.on("error", gone);
    call.on("cancelled", gone);
  };
}

/** Streams in-memory bytes in CHUNK-sized messages; the first carries total_bytes. */
async function streamBytes(
  call: grpc.ServerWritableStream<unknown, unknown>,
  bytes: Uint8Array,
  signal: AbortSignal,
): Promise<void> {
  for (let off = 0; off < bytes.length; off += CHUNK) {
    if (signal.aborted) return;
    const data = bytes.subarray(off, off + CHUNK);
    await writeWithBackpressure(
      call,
      off === 0 ? { data, totalBytes: bytes.length } : { data },
      signal,
    );
  }
}

async function streamFile(
  call: grpc.ServerWritableStream<unknown, unknown>,
  path: string,
  first: Record<string, unknown>,
  signal: AbortSignal,
): Promise<void> {
  const f = await Deno.open(path, { read: true });
  try {
    const total = (await f.stat()).size;
    let sentFirst = false;
    const buf = new Uint8Array(CHUNK);
    for (;;) {
      if (signal.aborted) return;
      const n = await f.read(buf);
      if (n === null) break;
      const data = buf.slice(0, n);
      await writeWithBackpressure(
        call,
        sentFirst ? { data } : { ...first, data, totalBytes: total },
        signal,
      );
      sentFirst = true;
    }
    if (!sentFirst) call.write({ ...first, data: new Uint8Array(), totalBytes: 0 });
  } finally {
    f.close();
  }
}

/** Handlers of `cumulus.v1.Cumulus`. */
export function cumulusHandlers(d: HandlerDeps): grpc.UntypedServiceImplementation {
  return {
    SubmitJob: submitHandler(d),
    GetJob: unary(d, "GetJob", async (req: { jobId: string }, call) => {
      const job = await d.manager.get(ownedJobId(d, call, req.jobId));
      // Env values go to the job's owner only, not to an admin looking on.
      const owner = job.spec.user === principalOf(call).user;
      return jobToWire(job, job.logSeq, { envValues: owner });
    }),
    ListJobs: unary(
      d,
      "ListJobs",
      (
        req: { states: string[]; user: string; pageSize: number; pageToken: string },
        call,
      ) => {
        const p = principalOf(call);
        const states = (req.states ?? []).filter((s) => s !== "JOB_STATE_UNSPECIFIED");
        for (const s of states) {
          if (!JOB_STATES.includes(s as JobState)) {
            throw new InvalidArgumentError("states", `unknown state ${s}`);
          }
        }
        const limit = Math.min(req.pageSize || 100, 1000);
        let beforeSeq = 0;
        if (req.pageToken) {
          beforeSeq = Number(req.pageToken);
          if (!Number.isInteger(beforeSeq) || beforeSeq <= 0) {
            throw new InvalidArgumentError("page_token", "not a token from a previous page");
          }
        }
        const jobs = d.manager.list({
          states: states as JobState[],
          // A user lists their own jobs; an admin everyone's, or one user's.
          user: p.admin ? req.user || undefined : p.user,
          limit,
          beforeSeq,
        });
        // A page of big jobs is cut to stay far under what clients accept.
        const page = cutToBudget(jobs, (j) => listedJobBytes(j.spec), MAX_LIST_PAGE_BYTES);
        const more = page.length < jobs.length || jobs.length === limit;
        const next = more ? String(page[page.length - 1].seq) : "";
        return Promise.resolve({ jobs: page.map((j) => jobToWire(j)), nextPageToken: next });
      },
    ),
    WatchJob: watchHandler(d),
    CancelJob: unary(d, "CancelJob", async (req: { jobId: string }, call) => {
      return { job: jobToWire(await d.manager.cancel(ownedJobId(d, call, req.jobId))) };
    }),
    GetResult: getResultHandler(d),
    ListWorkers: unary(d, "ListWorkers", async () => {
      const inv = await d.partitions.listingInventory();
      const active = d.manager.activeByNode();
      return {
        workers: inv.map(({ node: n, agent, access, devices }) => ({
          nodeId: n.id,
          hostname: n.hostname,
          state: n.state,
          availability: n.availability,
          role: n.role,
          labels: n.labels,
          address: n.address,
          runningJobs: active.get(n.id) ?? 0,
          agent,
          gpus: devices.map((g) => ({
            index: g.index,
            name: g.name,
            memoryBytes: g.memoryBytes,
            allocated: g.allocated,
            free: g.free,
            partitions: g.partitions,
            uuid: g.uuid,
            pciBusId: g.pciBusId,
            vendor: g.vendor,
          })),
          deviceAccess: access,
        })),
      };
    }),
    ListPartitions: unary(d, "ListPartitions", async (req: { nodeId: string }) => {
      const inv = await d.partitions.listingInventory();
      return {
        partitions: inv.filter((n) => !req.nodeId || n.node.id === req.nodeId).flatMap((n) =>
          n.partitions.map((p) => ({
            id: p.id,
            nodeId: n.node.id,
            device: p.device,
            memory: p.memory,
            owner: p.owner,
            // A whole-GPU group's members carry "<job>:g<k>" in Chronos.
            jobId: partitionJob(p.jobId) || p.jobId,
            expiresAtMs: p.expiresAtMs,
          }))
        ),
      };
    }),
    ...tokenHandlers(d),
  };
}

/** Token administration (admin only) and WhoAmI. */
function tokenHandlers(d: HandlerDeps): grpc.UntypedServiceImplementation {
  return {
    CreateToken: unary(
      d,
      "CreateToken",
      (req: { user: string; admin: boolean; expiresInS: number }, call) => {
        requireAdmin(principalOf(call), "creating a token");
        const user = String(req.user ?? "");
        if (!USER_NAME_RE.test(user)) {
          throw new InvalidArgumentError(
            "user",
            `must be 1-64 letters, digits or ._@- (starting with a letter or digit), got ${
              JSON.stringify(user.slice(0, 80))
            }`,
          );
        }
        const ttl = Number(req.expiresInS ?? 0);
        if (!Number.isFinite(ttl) || ttl < 0) {
          throw new InvalidArgumentError("expires_in_s", `must be >= 0, got ${req.expiresInS}`);
        }
        const t = newToken();
        const now = d.now();
        const rec = {
          id: t.id,
          user,
          admin: !!req.admin,
          hash: t.hash,
          createdAt: now,
          expiresAt: ttl > 0 ? now + Math.ceil(ttl * 1000) : 0,
        };
        d.tokens.insert(rec);
        d.log(`token ${t.id} created for ${user}${rec.admin ? " (admin)" : ""}`);
        return Promise.resolve({ token: tokenToWire({ ...rec, revokedAt: 0 }), secret: t.token });
      },
    ),
    ListTokens: unary(d, "ListTokens", (_req: unknown, call) => {
      requireAdmin(principalOf(call), "listing tokens");
      return Promise.resolve({ tokens: d.tokens.list().map(tokenToWire) });
    }),
    RevokeToken: unary(d, "RevokeToken", (req: { idOrUser: string }, call) => {
      requireAdmin(principalOf(call), "revoking a token");
      const key = String(req.idOrUser ?? "");
      if (key === "") throw new InvalidArgumentError("id_or_user", "is required");
      const revoked = d.tokens.revoke(key, d.now());
      if (revoked.length === 0) {
        throw new NotFoundError(`no active token with id or user ${JSON.stringify(key)}`);
      }
      d.log(`revoked token(s) ${revoked.map((t) => t.id).join(", ")}`);
      return Promise.resolve({ revoked: revoked.map(tokenToWire) });
    }),
    WhoAmI: unary(d, "WhoAmI", (_req: unknown, call) => {
      const p = principalOf(call);
      return Promise.resolve({ user: p.user, admin: p.admin, tokenId: p.tokenId });
    }),
  };
}

function submitHandler(d: HandlerDeps) {
  return upload<{ spec: JobSpec; imageCheck: Promise<void> }, unknown>(d, "SubmitJob", {
    first: "spec",
    header: (msg, call, fail) => {
      if (msg.payload !== "spec" || !msg.spec) {
        throw new InvalidArgumentError("spec", "the first message must carry the job spec");
      }
      // The job belongs to the authenticated user, whatever the request says.
      const spec: JobSpec = {
        ...parseJobSpec(msg.spec as RawJobSpec, d.limits),
        user: principalOf(call).user,
      };
      // Checked while the bundle uploads; a missing image ends the call at once.
      const imageCheck = d.manager.checkImage(spec);
      imageCheck.catch(fail);
      return { spec, imageCheck };
    },
    maxBytes: d.maxBundleBytes,
    tooLarge: () =>
      new ResourceExhaustedError(
        `bundle exceeds the limit of ${d.maxBundleBytes} bytes (max_bundle_bytes)`,
      ),
    ready: ({ imageCheck }) => imageCheck,
    finish: async ({ spec }, bundle) => {
      const job = await d.manager.submit(spec, bundle);
      return { jobId: job.id, job: jobToWire(job, job.logSeq, { envValues: true }) };
    },
  });
}

function watchHandler(d: HandlerDeps) {
  return serverStream(
    d,
    "WatchJob",
    async (
      req: { jobId: string; afterSeq: number; noLogs: boolean; noFollow: boolean },
      call,
      signal,
    ) => {
      const id = ownedJobId(d, call, req.jobId);
      for await (
        const ev of d.manager.watch(id, {
          afterSeq: Math.max(0, Number(req.afterSeq) || 0),
          noLogs: !!req.noLogs,
          noFollow: !!req.noFollow,
          signal,
        })
      ) {
        if (signal.aborted) break;
        // Line batches (the bulk of the traffic) are encoded by hand; see
        // src/rpc/log_codec.ts and the WatchJob serializer in orchestrator.ts.
        await writeWithBackpressure(
          call as grpc.ServerWritableStream<unknown, unknown>,
          ev.job
            ? { lines: ev.lines.map(lineToWire), job: jobToWire(ev.job) }
            : ev.encoded ?? encodeLinesEvent(ev.lines),
          signal,
        );
      }
    },
  );
}

function getResultHandler(d: HandlerDeps) {
  return serverStream(d, "GetResult", async (req: { jobId: string }, call, signal) => {
    const id = ownedJobId(d, call, req.jobId);
    const job = d.store.mustGet(id);
    if (!job.hasResult) throw new NotFoundError(`job ${id} has no result (state ${job.state})`);
    const removed = () => new NotFoundError(resultRemovedMessage(job, d.resultRetention));
    if (job.resultRemovedAt) throw removed();
    const files = resultFiles(d.resultDir, id);
    try {
      const meta = JSON.parse(await Deno.readTextFile(files.meta));
      await streamFile(
        call as grpc.ServerWritableStream<unknown, unknown>,
        files.data,
        { kind: meta.kind },
        signal,
      );
    } catch (err) {
      // The retention sweep may have removed it since the job was read.
      if (err instanceof Deno.errors.NotFound && d.store.get(id)?.resultRemovedAt) {
        throw removed();
      }
      throw err;
    }
  });
}

function authenticate(d: HandlerDeps, call: { metadata: grpc.Metadata }, jobId: string) {
  const id = requireId(jobId);
  const job = d.store.get(id);
  const given = String(call.metadata.get(TOKEN_KEY)[0] ?? "");
  if (job === null) throw new UnauthenticatedError(`invalid job token for ${id}`);
  const check = checkAttemptToken(given, job.token, job.attempts);
  if (!check.ok) {
    throw new UnauthenticatedError(
      check.earlierAttempt === null
        ? `invalid job token for ${id}`
        : `job token of attempt ${check.earlierAttempt} of ${id}, which has ended ` +
          `(attempt ${job.attempts} is the current one)`,
    );
  }
  return job;
}

/** Handlers of `cumulus.v1.Runtime` (called from job containers). */
export function runtimeHandlers(d: HandlerDeps): grpc.UntypedServiceImplementation {
  return {
    FetchBundle: serverStream(d, "FetchBundle", async (req: { jobId: string }, call, signal) => {
      const job = authenticate(d, call, req.jobId);
      d.manager.assertWithinStopWindow(job, "bundle fetches");
      // The container is evidently running: see it as such without waiting a poll.
      d.manager.nudge(job.id);
      if (job.bundleBytes === 0) throw new NotFoundError(`job ${job.id} has no bundle`);
      await streamFile(
        call as grpc.ServerWritableStream<unknown, unknown>,
        `${d.bundleDir}/${job.id}.tar.gz`,
        {},
        signal,
      );
    }),
    FetchFunction: serverStream(
      d,
      "FetchFunction",
      async (req: { jobId: string }, call, signal) => {
        const job = authenticate(d, call, req.jobId);
        d.manager.assertWithinStopWindow(job, "function fetches");
        d.manager.nudge(job.id);
        if (job.spec.function.length === 0) {
          throw new NotFoundError(`job ${job.id} has no function`);
        }
        await streamBytes(
          call as grpc.ServerWritableStream<unknown, unknown>,
          job.spec.function,
          signal,
        );
      },
    ),
    ReportResult: reportResultHandler(d),
    StreamLogs: streamLogsHandler(d),
    // A completed checkpoint of the job: stored on its record (persisted before
    // the answer), where expiry reads it to decide whether the job resumes.
    ReportCheckpoint: unary(
      d,
      "ReportCheckpoint",
      (req: { jobId: string } & RawCheckpointReport, call) => {
        const job = authenticate(d, call, req.jobId);
        d.manager.assertRunning(job);
        d.manager.checkpointReported(job.id, parseCheckpointReport(req, Date.now()));
        return Promise.resolve({});
      },
    ),
    // The job's own L2 prefix only, decided from its record (src/orchestrator/l2_access.ts).
    PresignCheckpoint: unary(
      d,
      "PresignCheckpoint",
      async (req: { jobId: string; requests: L2Request[] }, call) => {
        const job = authenticate(d, call, req.jobId);
        if (!d.l2) throw new L2AccessDeniedError("this orchestrator signs no L2 requests");
        d.manager.assertWithinStopWindow(job, "L2 requests");
        const now = Date.now();
        const urls = await d.l2.presign(job, req.requests, new Date(now));
        return { urls, expiresUnixMs: now + PRESIGN_EXPIRES_S * 1000 };
      },
    ),
    CheckpointKey: unary(d, "CheckpointKey", async (req: { jobId: string }, call) => {
      const job = authenticate(d, call, req.jobId);
      if (!d.l2) throw new L2AccessDeniedError("this orchestrator hands out no checkpoint keys");
      d.manager.assertWithinStopWindow(job, "checkpoint key requests");
      return { key: await d.l2.checkpointKey(job.id) };
    }),
  };
}

function reportResultHandler(d: HandlerDeps) {
  type Header = { jobId: string; kind: string };
  // A refused result must not look like a plain crash: the reason is kept on
  // the job, and the runner puts it first in the final FAILED reason.
  const refuse = (jobId: string, size: string) => {
    const msg = `result of ${size} bytes exceeds the limit of ${d.maxResultBytes} bytes ` +
      `(max_result_bytes)`;
    d.manager.resultRefused(jobId, msg);
    return new ResourceExhaustedError(msg);
  };
  return upload<Header, unknown>(d, "ReportResult", {
    first: "header",
    header: (msg, call) => {
      const h = msg.header as
        | { jobId: string; kind: string; totalBytes: number | string }
        | undefined;
      if (msg.payload !== "header" || !h) {
        throw new InvalidArgumentError("header", "the first message must be the header");
      }
      d.manager.assertRunning(authenticate(d, call, h.jobId));
      if (Number(h.totalBytes) > d.maxResultBytes) throw refuse(h.jobId, String(h.totalBytes));
      return { jobId: h.jobId, kind: h.kind || "pickle" };
    },
    maxBytes: d.maxResultBytes,
    tooLarge: (h, size) => refuse(h.jobId, size),
    finish: async ({ jobId, kind }, result) => {
      const path = result?.path ?? `${d.tmpDir}/result-${crypto.randomUUID()}`;
      if (!result) await Deno.writeFile(path, new Uint8Array());
      const bytes = result?.bytes ?? 0;
      await Deno.writeTextFile(`${d.resultDir}/${jobId}.json`, JSON.stringify({ kind, bytes }));
      await Deno.rename(path, `${d.resultDir}/${jobId}.bin`);
      // Recorded before the answer; the runtime exits right after it.
      d.manager.resultStored(jobId);
      return {};
    },
  });
}

interface WireLogBatch {
  jobId: string;
  attempt: number;
  firstIndex: number;
  texts: string[];
  streams: Uint8Array;
  timeMs: number;
  /** The lines as UTF-8, each ending in a newline (runtimes since LogBatch.data). */
  data?: Uint8Array;
  /** The stream's last batch: the job's process exited with `exitCode` by itself. */
  last?: boolean;
  exitCode?: number;
}

/** Byte offset just after the `n`-th newline of `data` (n >= 1), or -1. */
function afterNewlines(data: Uint8Array, n: number): number {
  let p = -1;
  for (let i = 0; i < n; i++) {
    p = data.indexOf(10, p + 1);
    if (p < 0) return -1;
  }
  return p + 1;
}

/**
 * `Runtime.StreamLogs`: a job's runtime sends its output in numbered batches
 * (fast path, bypassing Docker's log pipeline). Lines already stored are
 * skipped, so a runtime that reconnects may resend from its last ack; a gap
 * or an attempt that is not the job's current one is refused.
 */
function streamLogsHandler(d: HandlerDeps) {
  return (call: grpc.ServerDuplexStream<WireLogBatch, unknown>) => {
    let chain = Promise.resolve();
    let failed = false;
    /** The job this stream was authenticated for (set by its first batch). */
    let streamJobId = "";
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      call.emit("error", report(d, "StreamLogs", err));
    };
    const handle = async (batch: WireLogBatch) => {
      const job = authenticate(d, call, batch.jobId);
      d.manager.assertWithinStopWindow(job);
      streamJobId = job.id;
      if (batch.attempt !== job.attempts) {
        throw new CumulusError(
          "FAILED_PRECONDITION",
          `attempt ${batch.attempt} of job ${job.id} is over (the job is on attempt ${job.attempts})`,
        );
      }
      const log = await d.logs.get(job.id);
      let accepted = log.runtimeCount(batch.attempt);
      const first = Number(batch.firstIndex);
      if (first > accepted) {
        throw new InvalidArgumentError(
          "first_index",
          `lines ${accepted}..${first - 1} are missing; resend from ${accepted}`,
        );
      }
      const timeMs = Number(batch.timeMs) || Date.now();
      // Lines already stored (a resend after a reconnect) are skipped.
      const skip = Math.max(0, accepted - first);
      // A plain view: Node's Buffer.indexOf is far slower than Uint8Array's here.
      const data = batch.data &&
        new Uint8Array(batch.data.buffer, batch.data.byteOffset, batch.data.byteLength);
      if (data && data.length > 0) {
        if (batch.texts.length > 0) {
          throw new InvalidArgumentError("data", "a batch carries either texts or data, not both");
        }
        if (data[data.length - 1] !== 10) {
          throw new InvalidArgumentError("data", "every line must end with a newline");
        }
        const from = skip ? afterNewlines(data, skip) : 0;
        const streams = batch.streams ?? new Uint8Array(0);
        if (from >= 0 && from < data.length) {
          const n = log.appendRuntimeData(
            batch.attempt,
            first + skip,
            data.subarray(from),
            streams.subarray(skip),
            timeMs,
          );
          accepted = first + skip + n;
        }
      } else if (skip < batch.texts.length) {
        const texts = skip ? batch.texts.slice(skip) : batch.texts;
        const streams = batch.streams ?? new Uint8Array(0);
        log.appendRuntimeBatch(batch.attempt, first + skip, texts, streams.subarray(skip), timeMs);
        accepted = first + batch.texts.length;
      }
      // Written before acked: the runtime forgets acked lines, so an ack for
      // lines still in memory would lose them if the orchestrator died now.
      log.flushSync();
      call.write({ accepted });
      if (batch.last) d.manager.runtimeExited(job.id, batch.attempt, batch.exitCode ?? 0);
    };
    call.on("data", (batch: WireLogBatch) => {
      if (failed) return;
      call.pause();
      chain = chain.then(() => handle(batch)).then(
        () => {
          call.resume();
        },
        (err) => fail(err),
      );
    });
    call.on("end", () => {
      chain.then(() => {
        if (!failed) call.end();
        // The runtime closes its log stream once the command has exited.
        if (streamJobId) d.manager.nudge(streamJobId);
      });
    });
    call.on("error", () => {
      failed = true;
    });
  };
}
