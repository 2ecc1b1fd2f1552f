/**
 * Typed errors shared by every component. Each carries a stable `code` named
 * after the gRPC status it maps to; `src/rpc` does the mapping in one place.
 * @module
 */

/** gRPC status names used by Cumulus errors. */
export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "UNAVAILABLE"
  | "UNAUTHENTICATED"
  | "PERMISSION_DENIED"
  | "CANCELLED"
  | "DEADLINE_EXCEEDED"
  | "INTERNAL";

/** Base class of every error Cumulus raises on purpose. */
export class CumulusError extends Error {
  /** Stable machine-readable code (a gRPC status name). */
  readonly code: ErrorCode;
  /** Creates an error with a code and a human-readable message. */
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CumulusError";
    this.code = code;
  }
}

/** A request field has a bad value; `field` names it. */
export class InvalidArgumentError extends CumulusError {
  /** The offending field, e.g. `spec.gpu_memory`. */
  readonly field: string;
  /** Creates the error; the message is prefixed with the field name. */
  constructor(field: string, message: string) {
    super("INVALID_ARGUMENT", `${field}: ${message}`);
    this.name = "InvalidArgumentError";
    this.field = field;
  }
}

/** The named object (job, worker, result) does not exist. */
export class NotFoundError extends CumulusError {
  /** Creates the error. */
  constructor(message: string) {
    super("NOT_FOUND", message);
    this.name = "NotFoundError";
  }
}

/** A limit was hit (bundle size, queue length, result size). */
export class ResourceExhaustedError extends CumulusError {
  /** Creates the error. */
  constructor(message: string) {
    super("RESOURCE_EXHAUSTED", message);
    this.name = "ResourceExhaustedError";
  }
}

/** The operation is not valid in the object's current state. */
export class FailedPreconditionError extends CumulusError {
  /** Creates the error. */
  constructor(message: string) {
    super("FAILED_PRECONDITION", message);
    this.name = "FailedPreconditionError";
  }
}

/** A dependency (Docker, a worker) cannot serve the request now or ever. */
export class UnavailableError extends CumulusError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super("UNAVAILABLE", message, options);
    this.name = "UnavailableError";
  }
}

/** The caller's credentials (job token) are missing or wrong. */
export class UnauthenticatedError extends CumulusError {
  /** Creates the error. */
  constructor(message: string) {
    super("UNAUTHENTICATED", message);
    this.name = "UnauthenticatedError";
  }
}

/** The caller is known but may not do this (an admin-only call). */
export class PermissionDeniedError extends CumulusError {
  /** Creates the error. */
  constructor(message: string) {
    super("PERMISSION_DENIED", message);
    this.name = "PermissionDeniedError";
  }
}
