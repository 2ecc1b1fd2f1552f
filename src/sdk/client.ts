/**
 * {@link CumulusClient}: the TypeScript client of the orchestrator's
 * `cumulus.v1.Cumulus` gRPC service.
 * @module
 */
// The SDK is imported by URL, where deno.json's import map does not apply:
// dependencies must be full, pinned npm: specifiers.
// deno-lint-ignore no-import-prefix
import type { ClientWritableStream } from "npm:@grpc/grpc-js@1.14.7";
import { CumulusRpcError } from "./errors.ts";
import { Job } from "./job.ts";
import { resolveToken } from "./credentials.ts";
import { type RetryOptions, retryUnavailable, RpcConnection } from "./rpc.ts";
import type {
  JobPage,
  JobRecord,
  JobSpecInput,
  ListJobsOptions,
  Partition,
  Worker,
} from "./types.ts";
import { channelSecurity, defaultCaPem } from "./tls.ts";
import { defaultOrchestratorUrl, parseOrchestratorEndpoint } from "./url.ts";
import {
  jobFromWire,
  partitionFromWire,
  specToWire,
  type WireMessage,
  workerFromWire,
} from "./wire.ts";

/** Size of the bundle chunks sent after the spec (the wire convention). */
export const BUNDLE_CHUNK_BYTES = 64 * 1024;

/** A join token as {@link CumulusClient.createJoinToken} returns it. */
export interface JoinTokenInfo {
  /** The token text (`cuj_…`): single use, shown once. */
  token: string;
  /** When it expires, epoch ms. */
  expiresAtMs: number;
  /** The line to run as root on the new machine. */
  command: string;
  /** SHA-256 of the orchestrator's CA, "" without TLS. */
  caFingerprint: string;
}

/** Timeouts of a {@link CumulusClient}. */
export interface ClientOptions {
  /** The first connection must succeed within this many ms (default 4000). */
  connectTimeoutMs?: number;
  /** Deadline of unary calls in ms (default 30000). */
  callTimeoutMs?: number;
  /**
   * Once the orchestrator has answered, idempotent calls (job state, results,
   * listings) and streams retry UNAVAILABLE (an orchestrator restart) with
   * backoff from 100 ms doubling to 2 s for at most this many ms, then fail
   * (default 60000; 0 turns retrying off). SubmitJob and CancelJob are never
   * repeated.
   */
  reconnectTimeoutMs?: number;
  /**
   * PEM of the CA that signed the orchestrator's certificate, for `grpcs://` and
   * `https://` addresses. @default the file CUMULUS_CA_FILE names, else the system store
   */
  caPem?: string;
  /**
   * User token (`cu_…`) sent with every call. Default: CUMULUS_TOKEN, else
   * the credentials file `cumulus login` writes (see `credentialsPath`).
   */
  token?: string;
}

/** A user token as listings show it (never its secret). */
export interface TokenInfo {
  id: string;
  user: string;
  admin: boolean;
  /** Epoch ms. */
  createdAtMs: number;
  /** Epoch ms; 0 = never expires. */
  expiresAtMs: number;
  /** Epoch ms; 0 = not revoked. */
  revokedAtMs: number;
}

function tokenFromWire(w: WireMessage): TokenInfo {
  return {
    id: String(w.id ?? ""),
    user: String(w.user ?? ""),
    admin: !!w.admin,
    createdAtMs: Number(w.createdAtMs ?? 0),
    expiresAtMs: Number(w.expiresAtMs ?? 0),
    revokedAtMs: Number(w.revokedAtMs ?? 0),
  };
}

/** Upload progress reported by {@link CumulusClient.submit}. */
export interface UploadProgress {
  /** Bundle bytes handed to the connection so far. */
  sentBytes: number;
  /** Bundle size when known in advance (a Uint8Array bundle), else null. */
  totalBytes: number | null;
}

/** Options of {@link CumulusClient.submit}. */
export interface SubmitOptions {
  /** The job's files: a gzipped tar (see `packBundle`), whole or as a stream. */
  bundle?: Uint8Array | AsyncIterable<Uint8Array>;
  /** Called after each bundle chunk is sent. */
  onProgress?: (progress: UploadProgress) => void;
  /** Aborts the upload; no job is created unless the server already answered. */
  signal?: AbortSignal;
}

/**
 * Client of a Cumulus orchestrator. Calls fail with {@link CumulusRpcError}
 * (`code` is the gRPC status name, `message` the server's explanation); an
 * address where nothing answers fails within `connectTimeoutMs` (4 s).
 * @example
 * import { CumulusClient } from "https://example.com/cumulus/src/sdk/mod.ts";
 *
 * const client = new CumulusClient("127.0.0.1:50051");
 * try {
 *   const job = await client.submit({ command: ["sh", "-c", "echo hello"], gpuMemory: 0.5 });
 *   for await (const line of job.logs()) console.log(line.text);
 *   const done = await job.wait();
 *   console.log(done.state, done.exitCode); // "SUCCEEDED" 0
 * } finally {
 *   client.close();
 * }
 */
export class CumulusClient {
  /** The `host:port` this client talks to. */
  readonly url: string;
  /** True when the channel is TLS (a `grpcs://` or `https://` address). */
  readonly tls: boolean;
  readonly #rpc: RpcConnection;
  readonly #reconnectTimeoutMs: number;

  /**
   * Creates a client. `url` is `host:port`, `grpc://host:port` or a bare host
   * (port 50051), plaintext; or `grpcs://host:port` or `https://host[:port]` (port 443),
   * TLS verified against `options.caPem`; by default CUMULUS_ORCHESTRATOR_URL, else
   * 127.0.0.1:50051. Connecting is lazy: the constructor sends nothing.
   */
  constructor(url?: string, options: ClientOptions = {}) {
    const endpoint = parseOrchestratorEndpoint(url ?? defaultOrchestratorUrl());
    this.url = endpoint.target;
    this.tls = endpoint.tls;
    this.#rpc = new RpcConnection(this.url, {
      connectTimeoutMs: options.connectTimeoutMs ?? 4000,
      callTimeoutMs: options.callTimeoutMs ?? 30000,
      security: channelSecurity(
        endpoint,
        endpoint.tls ? options.caPem ?? defaultCaPem() : undefined,
      ),
      token: resolveToken(options.token),
    });
    this.#reconnectTimeoutMs = options.reconnectTimeoutMs ?? 60000;
  }

  /**
   * Submits a job (SubmitJob): sends the spec, then the bundle in 64 KiB
   * chunks, and returns the job's handle once the orchestrator stored it.
   * Unset `gpuMemory` and `duration` default to 0.25 and 3600; an empty
   * `image` means the orchestrator's default image.
   * @example
   * const bundle = (await packBundle(".")).bytes;
   * const job = await client.submit({ command: ["python3", "train.py"] }, { bundle });
   */
  async submit(spec: JobSpecInput, options: SubmitOptions = {}): Promise<Job> {
    options.signal?.throwIfAborted();
    let resolveDone!: (res: WireMessage) => void;
    let rejectDone!: (err: CumulusRpcError) => void;
    const done = new Promise<WireMessage>((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    let answered = false;
    // The answer may come (as an error) while chunks are still being sent;
    // it is awaited below, so an early rejection is not unhandled.
    done.catch(() => {}).finally(() => answered = true);
    const call = await this.#rpc.clientStream("SubmitJob", (err, res) => {
      if (err) rejectDone(err);
      else resolveDone(res);
    });
    const onAbort = () => call.cancel();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await writeMessage(call, { spec: specToWire(spec) }, done);
      if (options.bundle) {
        const total = options.bundle instanceof Uint8Array ? options.bundle.length : null;
        let sent = 0;
        for await (const chunk of rechunk(options.bundle, BUNDLE_CHUNK_BYTES)) {
          if (answered) break;
          await writeMessage(call, { chunk }, done);
          sent += chunk.length;
          options.onProgress?.({ sentBytes: sent, totalBytes: total });
        }
      }
      call.end();
      const res = await done;
      const jobId = typeof res.jobId === "string" ? res.jobId : "";
      if (jobId === "") throw new CumulusRpcError("INTERNAL", "SubmitJob returned no job id");
      return this.job(jobId);
    } catch (err) {
      call.cancel();
      options.signal?.throwIfAborted();
      throw this.#rpc.error(err);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** A handle for an existing job id (no call is made). */
  job(id: string): Job {
    return new Job(id, this.#rpc, { reconnectTimeoutMs: this.#reconnectTimeoutMs });
  }

  /** One job's record (GetJob). Throws NOT_FOUND for an unknown id. */
  async getJob(id: string): Promise<JobRecord> {
    return await this.job(id).status();
  }

  /**
   * One page of jobs (ListJobs), optionally filtered by state and user.
   * @example
   * const { jobs } = await client.listJobs({ states: ["RUNNING"], user: "ada" });
   */
  async listJobs(options: ListJobsOptions = {}): Promise<JobPage> {
    const req = {
      states: options.states ?? [],
      user: options.user ?? "",
      pageSize: options.pageSize ?? 0,
      pageToken: options.pageToken ?? "",
    };
    const res = await retryUnavailable(() => this.#rpc.unary("ListJobs", req), this.#retry());
    const jobs = Array.isArray(res.jobs) ? res.jobs : [];
    return {
      jobs: jobs.map((j) => jobFromWire(j as WireMessage)),
      nextPageToken: typeof res.nextPageToken === "string" ? res.nextPageToken : "",
    };
  }

  /** The Swarm nodes that can run jobs (ListWorkers). */
  async listWorkers(): Promise<Worker[]> {
    const res = await retryUnavailable(() => this.#rpc.unary("ListWorkers", {}), this.#retry());
    const workers = Array.isArray(res.workers) ? res.workers : [];
    return workers.map((w) => workerFromWire(w as WireMessage));
  }

  /** GPU partitions held on the workers, optionally on one node (ListPartitions). */
  async listPartitions(nodeId = ""): Promise<Partition[]> {
    const res = await retryUnavailable(
      () => this.#rpc.unary("ListPartitions", { nodeId }),
      this.#retry(),
    );
    const parts = Array.isArray(res.partitions) ? res.partitions : [];
    return parts.map((p) => partitionFromWire(p as WireMessage));
  }

  /** Who this client's token belongs to (WhoAmI). */
  async whoAmI(): Promise<{ user: string; admin: boolean; tokenId: string }> {
    const res = await retryUnavailable(() => this.#rpc.unary("WhoAmI", {}), this.#retry());
    return { user: String(res.user ?? ""), admin: !!res.admin, tokenId: String(res.tokenId ?? "") };
  }

  /**
   * Creates a token for `user` (admin only). The returned `secret` is the
   * token's text: shown this once, stored only hashed.
   * @param options `admin` makes an admin token; `expiresInS` > 0 limits its life.
   */
  async createToken(
    user: string,
    options: { admin?: boolean; expiresInS?: number } = {},
  ): Promise<{ token: TokenInfo; secret: string }> {
    const res = await this.#rpc.unary("CreateToken", {
      user,
      admin: !!options.admin,
      expiresInS: options.expiresInS ?? 0,
    });
    return { token: tokenFromWire(res.token as WireMessage), secret: String(res.secret ?? "") };
  }

  /** Every token, revoked ones included (admin only). */
  async listTokens(): Promise<TokenInfo[]> {
    const res = await retryUnavailable(() => this.#rpc.unary("ListTokens", {}), this.#retry());
    return (Array.isArray(res.tokens) ? res.tokens : []).map((t) =>
      tokenFromWire(t as WireMessage)
    );
  }

  /** Revokes the token with this id, or every token of this user (admin only). */
  async revokeToken(idOrUser: string): Promise<TokenInfo[]> {
    const res = await this.#rpc.unary("RevokeToken", { idOrUser });
    return (Array.isArray(res.revoked) ? res.revoked : []).map((t) =>
      tokenFromWire(t as WireMessage)
    );
  }

  /**
   * A single-use join token for a new worker and the line to run on it (admin only).
   * @param options `expiresS` > 0 sets its life (default 1 hour); `orchestratorUrl` is the
   * address the new machine dials (default: this client's own).
   */
  async createJoinToken(
    options: { expiresS?: number; orchestratorUrl?: string } = {},
  ): Promise<JoinTokenInfo> {
    const res = await this.#rpc.unary("CreateJoinToken", {
      expiresS: options.expiresS ?? 0,
      orchestratorUrl: options.orchestratorUrl ?? (this.tls ? `grpcs://${this.url}` : this.url),
    });
    return {
      token: String(res.token ?? ""),
      expiresAtMs: Number(res.expiresAtMs ?? 0),
      command: String(res.command ?? ""),
      caFingerprint: String(res.caFingerprint ?? ""),
    };
  }

  /**
   * Drains the joined worker `name` (admin only): no new jobs; with `now`, its running
   * jobs stop and resume elsewhere. Returns its Swarm node id ("" when it has none).
   */
  async drainWorker(name: string, options: { now?: boolean } = {}): Promise<string> {
    const res = await this.#rpc.unary("DrainWorker", { name, now: !!options.now });
    return String(res.nodeId ?? "");
  }

  /**
   * Forgets the joined worker `name`, its pinned host key and its Swarm node (admin
   * only). Returns the node id removed ("" when it had none).
   */
  async removeWorker(name: string): Promise<string> {
    const res = await this.#rpc.unary("RemoveWorker", { name });
    return String(res.nodeId ?? "");
  }

  #retry(): RetryOptions {
    return { timeoutMs: this.#reconnectTimeoutMs, reached: () => this.#rpc.reached };
  }

  /** Closes the connection; streams still open end with CANCELLED. */
  close(): void {
    this.#rpc.close();
  }
}

async function writeMessage(
  call: ClientWritableStream<WireMessage>,
  message: WireMessage,
  done: Promise<WireMessage>,
): Promise<void> {
  if (call.write(message)) return;
  // Backpressure: wait until grpc-js drained its buffer, or until the server
  // answered (an error there must not leave us waiting for a drain).
  await Promise.race([
    new Promise<void>((resolve) => call.once("drain", () => resolve())),
    done.then(() => {}),
  ]);
}

/** Re-cuts a byte source into pieces of at most `size` bytes. */
export async function* rechunk(
  source: Uint8Array | AsyncIterable<Uint8Array>,
  size: number,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (source instanceof Uint8Array) {
    for (let i = 0; i < source.length; i += size) yield source.subarray(i, i + size);
    return;
  }
  let buf = new Uint8Array(size);
  let fill = 0;
  for await (const piece of source) {
    let offset = 0;
    while (offset < piece.length) {
      const n = Math.min(size - fill, piece.length - offset);
      buf.set(piece.subarray(offset, offset + n), fill);
      fill += n;
      offset += n;
      if (fill === size) {
        yield buf;
        buf = new Uint8Array(size);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}
