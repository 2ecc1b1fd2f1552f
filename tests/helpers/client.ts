/**
 * Minimal raw gRPC client for orchestrator tests, built straight on the proto
 * (independent of the SDK, so SDK bugs cannot hide orchestrator bugs).
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { loadCumulusProto } from "../../src/rpc/mod.ts";
import { type Stack, startStack, TEST_ADMIN_TOKEN } from "./stack.ts";

/**
 * A client interceptor that sends `token` as the user token of every call
 * (`authorization: Bearer …`).
 */
export function authInterceptor(token: string): grpc.Interceptor {
  return (options, next) =>
    new grpc.InterceptingCall(next(options), {
      start(metadata, listener, nextStart) {
        metadata.set("authorization", `Bearer ${token}`);
        nextStart(metadata, listener);
      },
    });
}

/** A job as the wire returns it (the fields tests look at). */
export interface WireJob {
  id: string;
  state: string;
  hasExitCode: boolean;
  exitCode: number;
  reason: string;
  startedAtMs: number;
  finishedAtMs: number;
  createdAtMs: number;
  logSeq: number;
  serviceId: string;
  nodeId: string;
  attempts: number;
}

/** A log line as the wire returns it. */
export interface WireLine {
  seq: number;
  stream: string;
  text: string;
}

/** Thin promise wrapper around the generated client. */
export class TestClient {
  /** The underlying grpc-js client. */
  readonly raw: grpc.Client & Record<string, CallableFunction>;

  /**
   * Connects to "host:port"; every call carries `token` (default: the test
   * stacks' admin token; "" sends none).
   */
  constructor(url: string, token: string = TEST_ADMIN_TOKEN) {
    const { Cumulus } = loadCumulusProto();
    this.raw = new Cumulus(url, grpc.credentials.createInsecure(), {
      interceptors: token ? [authInterceptor(token)] : [],
    }) as unknown as
      & grpc.Client
      & Record<string, CallableFunction>;
  }

  /** Calls a unary method. */
  unary<T>(method: string, req: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      this.raw[method](req, { deadline: Date.now() + 10_000 }, (err: unknown, res: T) => {
        if (err) reject(err);
        else resolve(res);
      });
    });
  }

  /** Submits a spec with an optional bundle; resolves with the job id. */
  submit(spec: Record<string, unknown>, bundle?: Uint8Array): Promise<string> {
    return new Promise((resolve, reject) => {
      const call = this.raw.SubmitJob((err: grpc.ServiceError | null, res: { jobId: string }) => {
        if (err) reject(err);
        else resolve(res.jobId);
      });
      call.write({ spec });
      if (bundle) {
        for (let i = 0; i < bundle.length; i += 64 * 1024) {
          call.write({ chunk: bundle.subarray(i, i + 64 * 1024) });
        }
      }
      call.end();
    });
  }

  /** Job record. */
  getJob(id: string): Promise<WireJob> {
    return this.unary("GetJob", { jobId: id });
  }

  /** Cancels a job. */
  cancel(id: string): Promise<{ job: WireJob }> {
    return this.unary("CancelJob", { jobId: id });
  }

  /**
   * Watches a job to its end; reconnects (after a short pause) when the
   * server goes away, resuming after the last line received.
   */
  async watchAll(
    id: string,
    opts: { reconnect?: boolean; onLine?: (l: WireLine) => void; deadlineMs?: number } = {},
  ): Promise<{ lines: WireLine[]; job: WireJob; reconnects: number }> {
    const lines: WireLine[] = [];
    let job: WireJob | null = null;
    let reconnects = 0;
    const until = Date.now() + (opts.deadlineMs ?? 120_000);
    for (;;) {
      const after = lines.length ? lines[lines.length - 1].seq : 0;
      try {
        await new Promise<void>((resolve, reject) => {
          const call = this.raw.WatchJob({ jobId: id, afterSeq: after });
          call.on("data", (ev: { lines: WireLine[]; job: WireJob | null }) => {
            for (const l of ev.lines) {
              lines.push(l);
              opts.onLine?.(l);
            }
            if (ev.job) job = ev.job;
          });
          call.on("error", reject);
          call.on("end", resolve);
        });
        return { lines, job: job!, reconnects };
      } catch (err) {
        const code = (err as grpc.ServiceError).code;
        if (!opts.reconnect || code !== grpc.status.UNAVAILABLE || Date.now() > until) throw err;
        reconnects++;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Closes the channel. */
  close(): void {
    this.raw.close();
  }
}

/** Polls until `pred` holds (or throws after `ms`). */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T>,
  pred: (v: T) => boolean,
  ms = 30_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (pred(v)) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A spec with sane test defaults. */
export function spec(command: string[], extra: Record<string, unknown> = {}) {
  return { command, gpuMemory: 0.5, duration: 600, ...extra };
}

/** A raw client of the Runtime service, for tests that play a job's runtime. */
export function runtimeClient(url: string): grpc.Client & Record<string, CallableFunction> {
  const { Runtime } = loadCumulusProto();
  return new Runtime(url, grpc.credentials.createInsecure()) as unknown as
    & grpc.Client
    & Record<string, CallableFunction>;
}

/** A job's runtime token, read from the job's Swarm service (`docker`: the stack's engine client). */
export async function jobToken(
  docker: { getService(name: string): { inspect(): Promise<unknown> } },
  jobId: string,
): Promise<string> {
  const svc = await docker.getService(`cumulus-${jobId}`).inspect() as {
    Spec: { TaskTemplate: { ContainerSpec: { Env: string[] } } };
  };
  const env = svc.Spec.TaskTemplate.ContainerSpec.Env;
  return env.find((e) => e.startsWith("CUMULUS_JOB_TOKEN="))!.split("=")[1];
}

/** Call metadata carrying a job token, as the runtime sends it. */
export function tokenMetadata(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("x-cumulus-job-token", token);
  return md;
}

/**
 * Submits `command`, waits until it runs and reads its runtime token, so a
 * test can play the job's runtime (`docker`: the stack's engine client).
 */
export async function runningJob(
  c: TestClient,
  docker: Parameters<typeof jobToken>[0],
  command: string[],
): Promise<{ id: string; token: string; md: grpc.Metadata }> {
  const id = await c.submit(spec(command));
  await waitFor("RUNNING", () => c.getJob(id), (j) => j.state === "RUNNING");
  const token = await jobToken(docker, id);
  return { id, token, md: tokenMetadata(token) };
}

/** What {@link withRunningJob} hands its test. */
export interface RuntimeTestContext {
  stack: Stack;
  c: TestClient;
  /** A `Runtime` client, for playing the job's runtime. */
  rt: ReturnType<typeof runtimeClient>;
  id: string;
  token: string;
  md: grpc.Metadata;
}

/**
 * Starts a stack, submits `command` and waits until it runs, then runs `fn`
 * with the clients and the job's token; closes and stops everything after.
 */
export async function withRunningJob(
  command: string[],
  fn: (t: RuntimeTestContext) => Promise<void>,
): Promise<void> {
  const stack = await startStack();
  const c = new TestClient(stack.url);
  const rt = runtimeClient(stack.url);
  try {
    const job = await runningJob(c, stack.orch.swarm.docker, command);
    await fn({ stack, c, rt, ...job });
  } finally {
    rt.close();
    c.close();
    await stack.stop();
  }
}
