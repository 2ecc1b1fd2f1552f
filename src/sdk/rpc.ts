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

let serviceCtor: grpc.ServiceClientConstructor | null = null;

/** The `cumulus.v1.Cumulus` client constructor, built once from the descriptor. */
export function cumulusServiceClient(): grpc.ServiceClientConstructor {
  if (serviceCtor) return serviceCtor;
  const def = protoLoader.fromJSON(CUMULUS_PROTO_DESCRIPTOR, PROTO_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    cumulus: { v1: { Cumulus: grpc.ServiceClientConstructor } };
  };
  serviceCtor = pkg.cumulus.v1.Cumulus;
  return serviceCtor;
}

/** Timeouts of one connection. */
export interface RpcOptions {
  /** How long the first connection may take before calls fail (ms). */
  connectTimeoutMs: number;
  /** Deadline of unary calls (ms). */
  callTimeoutMs: number;
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

  /** Opens a lazy channel to `target` (nothing is sent until the first call). */
  constructor(target: string, options: RpcOptions) {
    this.target = target;
    this.#options = options;
    const Ctor = cumulusServiceClient();
    this.#client = new Ctor(target, grpc.credentials.createInsecure(), {
      // Reconnect quickly after an orchestrator restart: the default backoff
      // grows to minutes, and calls fail fast (waitForReady false) meanwhile.
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 2000,
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
    });
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

  /** Calls a unary method with the call deadline. */
  async unary(method: string, req: WireMessage, timeoutMs?: number): Promise<WireMessage> {
    await this.ready();
    const fn = this.#method<UnaryFn>(method);
    const deadline = Date.now() + (timeoutMs ?? this.#options.callTimeoutMs);
    return await new Promise<WireMessage>((resolve, reject) => {
      fn(req, new grpc.Metadata(), { deadline }, (err, res) => {
        if (err) reject(this.error(err));
        else resolve(res ?? {});
      });
    });
  }

  /** Starts a server-streaming call (no deadline: streams live as long as jobs). */
  async serverStream(
    method: string,
    req: WireMessage,
  ): Promise<grpc.ClientReadableStream<WireMessage>> {
    await this.ready();
    return this.#method<ServerStreamFn>(method)(req, new grpc.Metadata(), {});
  }

  /** Starts a client-streaming call; `done` receives the response or the error. */
  async clientStream(
    method: string,
    done: (err: CumulusRpcError | null, res: WireMessage) => void,
  ): Promise<grpc.ClientWritableStream<WireMessage>> {
    await this.ready();
    return this.#method<ClientStreamFn>(method)(new grpc.Metadata(), {}, (err, res) => {
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

  #method<T>(name: string): T {
    const fn = (this.#client as unknown as Record<string, unknown>)[name];
    if (typeof fn !== "function") throw new Error(`unknown RPC method ${name}`);
    return fn.bind(this.#client) as T;
  }
}

/** Shortens grpc-js transport messages to what a user can act on. */
function transportReason(details: string): string {
  if (details.includes("ECONNREFUSED")) return "connection refused (is the orchestrator running?)";
  if (details.startsWith("Name resolution failed")) return "unknown host";
  if (details.includes("EHOSTUNREACH") || details.includes("ENETUNREACH")) {
    return "host unreachable";
  }
  return details.replace(/\s*Resolution note:\s*$/, "").replace(/\.$/, "");
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}
