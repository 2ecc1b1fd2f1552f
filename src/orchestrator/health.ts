/**
 * `grpc.health.v1.Health`: SERVING while the orchestrator accepts calls,
 * NOT_SERVING once it is shutting down. Services known: "" (the server),
 * "cumulus.v1.Cumulus" and "cumulus.v1.Runtime".
 * @module
 */
import type * as grpc from "@grpc/grpc-js";
import { NotFoundError } from "../core/mod.ts";
import { toRpcError } from "../rpc/mod.ts";

const KNOWN = new Set(["", "cumulus.v1.Cumulus", "cumulus.v1.Runtime"]);

/** Serving status as the health protocol names it. */
export type ServingStatus = "SERVING" | "NOT_SERVING";

/** Tracks the serving status and notifies Watch streams. */
export class HealthState {
  #status: ServingStatus = "SERVING";
  #watchers = new Set<(s: ServingStatus) => void>();

  /** The current status. */
  get status(): ServingStatus {
    return this.#status;
  }

  /** Changes the status and tells every watcher. */
  set(status: ServingStatus): void {
    if (status === this.#status) return;
    this.#status = status;
    for (const w of this.#watchers) w(status);
  }

  /** Handlers for the Health service. */
  handlers(): grpc.UntypedServiceImplementation {
    return {
      Check: (
        call: grpc.ServerUnaryCall<{ service: string }, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => {
        if (!KNOWN.has(call.request.service)) {
          cb(toRpcError(new NotFoundError(`unknown service ${call.request.service}`)) as never);
          return;
        }
        cb(null, { status: this.#status });
      },
      Watch: (call: grpc.ServerWritableStream<{ service: string }, unknown>) => {
        const status = KNOWN.has(call.request.service) ? this.#status : "SERVICE_UNKNOWN";
        call.write({ status });
        if (!KNOWN.has(call.request.service)) return;
        const w = (s: ServingStatus) => call.write({ status: s });
        this.#watchers.add(w);
        const done = () => this.#watchers.delete(w);
        call.on("cancelled", done);
        call.on("close", done);
      },
    };
  }
}
