/**
 * The gRPC connection to the orchestrator: loads the generated descriptor,
 * applies deadlines and maps failures to {@link CumulusRpcError}.
 * @module
 */
// The SDK is imported by URL, where deno.json's import map does not apply:
// dependencies must be full, pinned npm: specifiers.
// deno-lint-ignore no-import-prefix
import * as grpc from "npm:@grpc/grpc-js@1.14.7";
// deno-lint-ignore no-import-prefix
import * as protoLoader from "npm:@grpc/proto-loader@0.8.1";
import { CumulusRpcError, RPC_CODES } from "./errors.ts";
import { CUMULUS_PROTO_DESCRIPTOR } from "./proto_gen.ts";
import type { ChannelSecurity } from "./tls.ts";
import type { WireMessage } from "./wire.ts";

/** proto-loader options shared by every Cumulus peer (the wire convention). */
export const PROTO_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  arrays: true,
  objects: true,
};

const serviceCtors = new Map<string, grpc.ServiceClientConstructor>();

/** A `cumulus.v1` service a client can talk to. */
export type ServiceName = "Cumulus" | "WorkerJoin";

/** The client constructor of the `cumulus.v1` service `name`, built once from the descriptor. */
export function serviceClient(name: ServiceName): grpc.ServiceClientConstructor {
  const known = serviceCtors.get(name);
  if (known) return known;
  const def = protoLoader.fromJSON(CUMULUS_PROTO_DESCRIPTOR, PROTO_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    cumulus: { v1: Record<ServiceName, grpc.ServiceClientConstructor> };
  };
  const ctor = pkg.cumulus.v1[name];
  serviceCtors.set(name, ctor);
  return ctor;
}

/** The `cumulus.v1.Cumulus` client constructor, built once from the descriptor. */
export function cumulusServiceClient(): grpc.ServiceClientConstructor {
  return serviceClient("Cumulus");
}

/** Timeouts of one connection. */
export interface RpcOptions {
  /** How long the first connection may take before calls fail (ms). */
  connectTimeoutMs: number;
  /** Deadline of unary calls (ms). */
  callTimeoutMs: number;
  /** TLS credentials and their channel options. @default plaintext */
  security?: ChannelSecurity;
  /** User token sent with every call (`authorization: Bearer …`); "" sends none. */
  token?: string;
  /** The service called. @default "Cumulus" */
  service?: ServiceName;
}

type UnaryFn = (
  req: WireMessage,
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: WireMessage) => void,
) => grpc.ClientUnaryCall;
type ServerStreamFn = (
  req: WireMessage,
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
) => grpc.ClientReadableStream<WireMessage>;
type ClientStreamFn = (
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: WireMessage) => void,
) => grpc.ClientWritableStream<WireMessage>;

// Messages grpc-js itself produces when the transport fails (as opposed to
// an UNAVAILABLE status the orchestrator sends on purpose).
const TRANSPORT_FAILURE =
  /^(No connection established|Connection dropped|Name resolution failed|Failed to connect|read ECONNRESET|Call dropped)/;

/** One channel to the orchestrator. */
export class RpcConnection {
  /** The `host:port` target. */
  readonly target: string;
  readonly #client: grpc.Client;
  readonly #options: RpcOptions;
  #ready: Promise<void> | null = null;
  #reached = false;

  /** Opens a lazy channel to `target` (nothing is sent until the first call). */
  constructor(target: string, options: RpcOptions) {
    this.target = target;
    this.#options = options;
    const Ctor = serviceClient(options.service ?? "Cumulus");
    this.#client = new Ctor(
      target,
      options.security?.credentials ?? grpc.credentials.createInsecure(),
      {
        ...options.security?.options,
        // Reconnect quickly after an orchestrator restart: the default backoff
        // grows to minutes, and calls fail fast (waitForReady false) meanwhile.
        "grpc.initial_reconnect_backoff_ms": 200,
        "grpc.max_reconnect_backoff_ms": 2000,
        "grpc.max_receive_message_length": 64 * 1024 * 1024,
      },
    );
  }

  /**
   * Resolves once the channel connected or failed for a reason a call will
   * report (refused, unresolvable); rejects with UNAVAILABLE when nothing
   * answers within the connect timeout (a black-holed address would
   * otherwise hang for about 20 s).
   */
  ready(): Promise<void> {
    if (this.#ready) return this.#ready;
    const channel = this.#client.getChannel();
    const deadline = Date.now() + this.#options.connectTimeoutMs;
    const ready = new Promise<void>((resolve, reject) => {
      const check = () => {
        const state = channel.getConnectivityState(true);
        if (
          state === grpc.connectivityState.READY ||
          state === grpc.connectivityState.TRANSIENT_FAILURE
        ) {
          if (state === grpc.connectivityState.READY) this.#reached = true;
          resolve();
          return;
        }
        if (state === grpc.connectivityState.SHUTDOWN) {
          reject(new CumulusRpcError("CANCELLED", "the client was closed"));
          return;
        }
        channel.watchConnectivityState(state, deadline, (err?: Error) => {
          if (err) {
            reject(
              new CumulusRpcError(
                "UNAVAILABLE",
                `cannot reach the orchestrator at ${this.target}: no answer within ` +
                  `${this.#options.connectTimeoutMs / 1000} s`,
              ),
            );
          } else {
            check();
          }
        });
      };
      check();
    });
    this.#ready = ready;
    // A failed attempt is not cached: the next call tries again.
    ready.catch(() => {
      if (this.#ready === ready) this.#ready = null;
    });
    return ready;
  }

  /**
   * True once the orchestrator answered on this channel: from then on,
   * UNAVAILABLE means it restarts, and idempotent calls retry (see
   * {@link retryUnavailable}); before, it means a wrong address or a stopped
   * orchestrator, reported at once.
   */
  get reached(): boolean {
    return this.#reached;
  }

  /** Marks the orchestrator as reached (a stream delivered a message). */
  markReached(): void {
    this.#reached = true;
  }

  /** Calls a unary method with the call deadline. */
  async unary(method: string, req: WireMessage, timeoutMs?: number): Promise<WireMessage> {
    await this.ready();
    const fn = this.#method<UnaryFn>(method);
    const deadline = Date.now() + (timeoutMs ?? this.#options.callTimeoutMs);
    return await new Promise<WireMessage>((resolve, reject) => {
      fn(req, this.#metadata(), { deadline }, (err, res) => {
        if (err) reject(this.error(err));
        else {
          this.#reached = true;
          resolve(res ?? {});
        }
      });
    });
  }

  /** Starts a server-streaming call (no deadline: streams live as long as jobs). */
  async serverStream(
    method: string,
    req: WireMessage,
  ): Promise<grpc.ClientReadableStream<WireMessage>> {
    await this.ready();
    return this.#method<ServerStreamFn>(method)(req, this.#metadata(), {});
  }

  /** Starts a client-streaming call; `done` receives the response or the error. */
  async clientStream(
    method: string,
    done: (err: CumulusRpcError | null, res: WireMessage) => void,
  ): Promise<grpc.ClientWritableStream<WireMessage>> {
    await this.ready();
    return this.#method<ClientStreamFn>(method)(this.#metadata(), {}, (err, res) => {
      done(err ? this.error(err) : null, res ?? {});
    });
  }

  /**
   * Maps anything a call threw to a {@link CumulusRpcError}: gRPC statuses
   * keep their code and the server's one-line message; transport failures
   * say which address could not be reached.
   */
  error(err: unknown): CumulusRpcError {
    if (err instanceof CumulusRpcError) return err;
    const e = err as Partial<grpc.ServiceError>;
    if (typeof e?.code === "number" && e.code >= 0 && e.code < RPC_CODES.length) {
      const code = RPC_CODES[e.code];
      let details = oneLine(e.details ?? e.message ?? "");
      if (code === "UNAVAILABLE" && TRANSPORT_FAILURE.test(details)) {
        details = `cannot reach the orchestrator at ${this.target}: ${transportReason(details)}`;
      } else if (code === "DEADLINE_EXCEEDED") {
        details = `no answer from the orchestrator at ${this.target} in time (${details})`;
      }
      return new CumulusRpcError(code, details, { cause: err });
    }
    const message = err instanceof Error ? err.message : String(err);
    return new CumulusRpcError("UNKNOWN", oneLine(message), { cause: err });
  }

  /** Closes the channel; calls in flight fail with CANCELLED. */
  close(): void {
    this.#client.close();
  }

  #metadata(): grpc.Metadata {
    const meta = new grpc.Metadata();
    if (this.#options.token) meta.set("authorization", `Bearer ${this.#options.token}`);
    return meta;
  }

  #method<T>(name: string): T {
    const fn = (this.#client as unknown as Record<string, unknown>)[name];
    if (typeof fn !== "function") throw new Error(`unknown RPC method ${name}`);
    return fn.bind(this.#client) as T;
  }
}

/** Options of {@link retryUnavailable}. */
export interface RetryOptions {
  /** Stop retrying once UNAVAILABLE lasted this long (ms); 0 turns retrying off. */
  timeoutMs: number;
  /** False while the orchestrator never answered: UNAVAILABLE then fails at once. */
  reached: () => boolean;
  /** Stops the waiting; the call then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** First delay between attempts (ms); it doubles up to {@link RETRY_MAX_DELAY_MS}. */
export const RETRY_INITIAL_DELAY_MS = 100;
/** Largest delay between attempts (ms). */
export const RETRY_MAX_DELAY_MS = 2000;

/**
 * Delay before attempt `failures + 1` (ms): 100 ms doubling to 2 s, never
 * past what is left of the budget; null once the budget is spent.
 * @param failures Failures so far (1 after the first).
 * @param elapsedMs Time since the first failure.
 * @param timeoutMs The budget.
 * @returns The delay in ms, or null.
 */
export function retryDelayMs(
  failures: number,
  elapsedMs: number,
  timeoutMs: number,
): number | null {
  const left = timeoutMs - elapsedMs;
  if (left <= 0) return null;
  const delay = RETRY_INITIAL_DELAY_MS * 2 ** Math.min(failures - 1, 16);
  return Math.min(delay, RETRY_MAX_DELAY_MS, left);
}

/**
 * Runs `attempt`, repeating it while it fails with UNAVAILABLE (an
 * orchestrator restart) with capped exponential backoff, for at most
 * `timeoutMs`. Only for calls that are safe to repeat (reads); never for
 * SubmitJob or CancelJob.
 * @param attempt One try of the call.
 * @param options The budget and whether the orchestrator was ever reached.
 * @returns What `attempt` resolved with.
 * @throws {CumulusRpcError} The last UNAVAILABLE once the budget is spent, or any other error at once.
 * @example
 * const job = await retryUnavailable(() => rpc.unary("GetJob", { jobId }), {
 *   timeoutMs: 60_000,
 *   reached: () => rpc.reached,
 * });
 */
export async function retryUnavailable<T>(
  attempt: () => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  let failures = 0;
  let since = 0;
  while (true) {
    options.signal?.throwIfAborted();
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof CumulusRpcError) || err.code !== "UNAVAILABLE" || !options.reached()) {
        throw err;
      }
      if (failures === 0) since = Date.now();
      failures++;
      const delay = retryDelayMs(failures, Date.now() - since, options.timeoutMs);
      if (delay === null) throw err;
      await abortableSleep(delay, options.signal);
    }
  }
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Shortens grpc-js transport messages to what a user can act on. */
// What grpc-js reports when the server's certificate does not verify (Deno's node:tls).
const TLS_FAILURE =
  /certificate|altnames|ERR_TLS|UnknownIssuer|self-signed|self signed|unable to verify|CERT_/i;

function transportReason(details: string): string {
  if (details.includes("ECONNREFUSED")) return "connection refused (is the orchestrator running?)";
  if (details.startsWith("Name resolution failed")) return "unknown host";
  if (details.includes("EHOSTUNREACH") || details.includes("ENETUNREACH")) {
    return "host unreachable";
  }
  if (TLS_FAILURE.test(details)) {
    return `TLS: ${
      details.replace(/^.*Last error: (Error( \[\w+\])?: )?/, "").replace(
        /\.?\s*Resolution note:\s*$/,
        "",
      )
    } (is CUMULUS_CA_FILE the CA that signed the orchestrator's certificate, ` +
      "and does the certificate name this host?)";
  }
  return details.replace(/\s*Resolution note:\s*$/, "").replace(/\.$/, "");
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}
