/**
 * Typed errors raised by the SDK. Every error has a stable `code` named after
 * a gRPC status, so callers branch on `err.code` rather than on message text.
 * @module
 */
import { formatBytes } from "./bytes.ts";

/** gRPC status names, as used in {@link CumulusRpcError.code}. */
export type RpcCode =
  | "OK"
  | "CANCELLED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS"
  | "UNAUTHENTICATED";

/** gRPC status names indexed by their numeric code (0..16). */
export const RPC_CODES: readonly RpcCode[] = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/** Base class of every error the SDK raises on purpose. */
export class CumulusSdkError extends Error {
  /** Stable machine-readable code (a gRPC status name). */
  readonly code: RpcCode;
  /** Creates an error with a code and a one-line message. */
  constructor(code: RpcCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CumulusSdkError";
    this.code = code;
  }
}

/**
 * A call to the orchestrator failed. `code` is the gRPC status name and
 * `message` the server's one-line explanation (for INVALID_ARGUMENT it starts
 * with the field, e.g. `spec.gpu_memory: must be a fraction in (0, 1], got 2`).
 * @example
 * try {
 *   await client.getJob("j-000000000000");
 * } catch (err) {
 *   if (err instanceof CumulusRpcError && err.code === "NOT_FOUND") console.log("no such job");
 * }
 */
export class CumulusRpcError extends CumulusSdkError {
  /** Creates the error from a status name and message. */
  constructor(code: RpcCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = "CumulusRpcError";
  }
}

/** The orchestrator URL could not be parsed. */
export class InvalidUrlError extends CumulusSdkError {
  /** Creates the error; `url` is the text the caller gave. */
  constructor(url: string, why: string) {
    super("INVALID_ARGUMENT", `invalid orchestrator URL ${JSON.stringify(url)}: ${why}`);
    this.name = "InvalidUrlError";
  }
}

/** One file and its size, as listed in {@link BundleTooLargeError}. */
export interface FileSize {
  /** Path relative to the bundled directory. */
  path: string;
  /** Size in bytes. */
  bytes: number;
}

/**
 * The packed bundle grew past the size limit. The message names the size,
 * the limit and the largest files, so the user knows what to ignore.
 */
export class BundleTooLargeError extends CumulusSdkError {
  /** Compressed bytes produced before packing stopped (a lower bound). */
  readonly bytes: number;
  /** The limit in bytes. */
  readonly limit: number;
  /** Total size of the files selected for the bundle, before compression. */
  readonly rawBytes: number;
  /** The largest files selected, biggest first. */
  readonly largestFiles: readonly FileSize[];
  /** Creates the error. */
  constructor(bytes: number, limit: number, rawBytes: number, largestFiles: FileSize[]) {
    const largest = largestFiles.map((f) => `${f.path} (${formatBytes(f.bytes)})`).join(", ");
    super(
      "RESOURCE_EXHAUSTED",
      `bundle too large: more than ${formatBytes(bytes)} compressed ` +
        `(${formatBytes(rawBytes)} of files) exceeds the limit of ${formatBytes(limit)}; ` +
        `largest files: ${largest || "none"}; ` +
        `list what the job does not need in .cumulusignore`,
    );
    this.name = "BundleTooLargeError";
    this.bytes = bytes;
    this.limit = limit;
    this.rawBytes = rawBytes;
    this.largestFiles = largestFiles;
  }
}

/** The directory to bundle is missing or a file in it cannot be read. */
export class BundleError extends CumulusSdkError {
  /** Creates the error. */
  constructor(code: RpcCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = "BundleError";
  }
}
