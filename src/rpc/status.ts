/**
 * The one place where Cumulus errors become gRPC statuses.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { CumulusError, type ErrorCode } from "../core/mod.ts";

const CODE: Record<ErrorCode, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  CANCELLED: grpc.status.CANCELLED,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  INTERNAL: grpc.status.INTERNAL,
};

/** A gRPC error object ready to pass to a callback or `call.destroy()`. */
export interface RpcError extends Error {
  /** gRPC status code. */
  code: grpc.status;
  /** One-line message for the client. */
  details: string;
}

/**
 * Maps any thrown value to a gRPC error. Cumulus errors keep their code and
 * message; anything else becomes INTERNAL with a generic message (the real
 * one is logged by the caller, never leaked with possible secrets).
 */
export function toRpcError(err: unknown): RpcError {
  if (err instanceof CumulusError) {
    const e = new Error(err.message) as RpcError;
    e.code = CODE[err.code];
    e.details = err.message.replace(/\s*\n\s*/g, " ");
    return e;
  }
  const e = new Error("internal error") as RpcError;
  e.code = grpc.status.INTERNAL;
  e.details = "internal error (see orchestrator log)";
  return e;
}

/** The gRPC status code a Cumulus error code maps to. */
export function statusFor(code: ErrorCode): grpc.status {
  return CODE[code];
}
