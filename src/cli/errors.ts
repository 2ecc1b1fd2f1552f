/**
 * How errors leave the CLI: exactly one line on stderr and an exit code.
 * @module
 */
import { CumulusRpcError, CumulusSdkError } from "../sdk/mod.ts";
import { UsageError } from "./args.ts";
import { escapeTerminal } from "./format.ts";

/** Exit code of usage errors. */
export const EXIT_USAGE = 2;

/** Exit code of every other error. */
export const EXIT_ERROR = 1;

/**
 * The one line printed for an error: `cumulus: <message>`, with the gRPC
 * status in brackets for server errors (e.g. `[NOT_FOUND]`), newlines folded,
 * control characters escaped (messages quote user input).
 * @example
 * errorLine(new CumulusRpcError("NOT_FOUND", "job j-0123456789ab not found"));
 * // "cumulus: job j-0123456789ab not found [NOT_FOUND]"
 */
export function errorLine(err: unknown): string {
  let message: string;
  if (err instanceof CumulusRpcError) {
    message = `${err.message} [${err.code}]`;
  } else if (err instanceof Error) {
    message = err.message;
  } else {
    message = String(err);
  }
  return `cumulus: ${escapeTerminal(message.replace(/\s*\n\s*/g, " ").trim())}`;
}

/** The exit code for an error. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT_USAGE;
  if (err instanceof CumulusSdkError) return EXIT_ERROR;
  return EXIT_ERROR;
}
