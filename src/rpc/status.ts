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

/**
 * Longest status message sent, in characters. The message travels in an HTTP/2
 * trailer, which clients cap (grpcio at 8 KiB of metadata by default); one that
 * echoes a huge request value (a 7 MiB job id) made the call end CANCELLED
 * instead of with its status.
 */
export const MAX_DETAILS_CHARS = 1000;

/** `text` cut to {@link MAX_DETAILS_CHARS}, saying how long it was. */
function clipDetails(text: string): string {
  if (text.length <= MAX_DETAILS_CHARS) return text;
  return `${text.slice(0, MAX_DETAILS_CHARS)}... (${text.length} characters in all)`;
}

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
    const details = clipDetails(err.message.replace(/\s*\n\s*/g, " "));
    const e = new Error(details) as RpcError;
    e.code = CODE[err.code];
    e.details = details;
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
