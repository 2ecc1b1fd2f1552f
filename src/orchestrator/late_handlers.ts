/**
 * Handlers registered before the server listens, whose implementation comes
 * later: the orchestrator must bind its port first (jobs dial the address it
 * got) and build its handlers after, and grpc-js answers UNIMPLEMENTED for a
 * service not added yet. Until {@link LateHandlers.ready} a call gets
 * UNAVAILABLE, which every Cumulus client retries as it does a restart.
 * @module
 */
import * as grpc from "@grpc/grpc-js";

type AnyHandler = (call: unknown, cb?: unknown) => unknown;

/** A service's handlers now, and the call that hands them their implementation. */
export interface LateHandlers {
  /** What to pass to `server.addService` at once. */
  handlers: grpc.UntypedServiceImplementation;
  /** From now on, calls go to `impl`. */
  ready(impl: grpc.UntypedServiceImplementation): void;
}

/** Handlers for every method of `def`, answering UNAVAILABLE until ready. */
export function lateHandlers(def: grpc.ServiceDefinition): LateHandlers {
  let impl: grpc.UntypedServiceImplementation | null = null;
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of Object.keys(def)) {
    handlers[method] = ((call: { emit(e: string, v: unknown): void }, cb?: unknown) => {
      const h = impl?.[method] as AnyHandler | undefined;
      if (h) return cb === undefined ? h(call) : h(call, cb);
      const err = { code: grpc.status.UNAVAILABLE, details: "the orchestrator is starting" };
      // Unary and client-streaming calls answer through the callback; the others through the call.
      if (typeof cb === "function") (cb as (e: unknown) => void)(err);
      else call.emit("error", err);
    }) as grpc.UntypedHandleCall;
  }
  return {
    handlers,
    ready(next) {
      impl = next;
    },
  };
}
