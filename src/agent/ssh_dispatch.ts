/**
 * `cumulus-agent ssh-dispatch`: the forced command of the orchestrator's key in the worker's
 * authorized_keys. sshd puts what the client asked to run in SSH_ORIGINAL_COMMAND; the
 * orchestrator sends a JSON array of strings (the argv), which is parsed here and run in-process
 * by the agent, so no shell ever sees it. Only the commands the orchestrator needs are allowed,
 * and the flags that would point Chronos at another state directory or config are refused: the
 * worker's own environment decides those. `serve --stdio` (many commands over one channel, each
 * checked the same way) is the only long-running command allowed.
 * @module
 */
import { ChronosError } from "./chronos.ts";

/** Command prefixes the orchestrator may run through the forced command. */
export const DISPATCH_ALLOWED: readonly (readonly string[])[] = [
  ["gpus"],
  ["partition", "create"],
  ["partition", "create-group"],
  ["partition", "release"],
  ["partition", "release-job"],
  ["partition", "list"],
  ["partition", "stats"],
  ["partition", "reap"],
];

const REFUSED_FLAGS = new Set(["--state-dir", "--config"]);
const MAX_COMMAND_BYTES = 64 * 1024;

/** SSH_ORIGINAL_COMMAND is missing, malformed or not allowed: exit code 2. */
export class DispatchRefusedError extends ChronosError {
  /** Creates the error. */
  constructor(message: string) {
    super(2, `ssh-dispatch refused: ${message}`);
    this.name = "DispatchRefusedError";
  }
}

/**
 * Parses SSH_ORIGINAL_COMMAND into the agent argv it stands for, or throws
 * {@link DispatchRefusedError}. A leading "cumulus-agent" (argv[0]) is dropped.
 * @example
 * parseDispatchCommand('["cumulus-agent","partition","list","--json"]');
 * // → ["partition", "list", "--json"]
 */
export function parseDispatchCommand(
  text: string | undefined,
  opts: { allowStdio?: boolean } = {},
): string[] {
  if (text === undefined || text === "") {
    throw new DispatchRefusedError(
      "no command (SSH_ORIGINAL_COMMAND is empty; interactive logins are not allowed)",
    );
  }
  if (text.length > MAX_COMMAND_BYTES) throw new DispatchRefusedError("command too long");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new DispatchRefusedError("the command must be a JSON array of strings");
  }
  if (!Array.isArray(parsed) || parsed.some((a) => typeof a !== "string")) {
    throw new DispatchRefusedError("the command must be a JSON array of strings");
  }
  const argv = parsed as string[];
  const rest = argv[0] === "cumulus-agent" ? argv.slice(1) : argv;
  // The one long-running command allowed: many commands over one channel (src/agent/stdio.ts).
  if (
    (opts.allowStdio ?? true) && rest.length === 2 && rest[0] === "serve" && rest[1] === "--stdio"
  ) {
    return rest;
  }
  const allowed = DISPATCH_ALLOWED.some((prefix) => prefix.every((word, i) => rest[i] === word));
  if (!allowed) {
    const shown = rest.slice(0, 2).join(" ") || "(nothing)";
    throw new DispatchRefusedError(`'${shown}' is not an allowed agent command`);
  }
  const bad = rest.find((a) => REFUSED_FLAGS.has(a));
  if (bad !== undefined) throw new DispatchRefusedError(`${bad} is not allowed over SSH`);
  return rest;
}
