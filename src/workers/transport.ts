/**
 * How the orchestrator runs `cumulus-agent` on a worker: a transport runs an
 * argv there and returns its exit code and output. The manager's own node is
 * served by one persistent agent child (`LocalChannelTransport`,
 * agent_channel.ts); {@link LocalTransport} here, one process per command, serves
 * tools and tests that run a few commands; SSH transports (src/ssh) serve the rest.
 * @module
 */
import { fileURLToPath } from "node:url";

/** What running one command on a worker gave back. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs an argv on a worker (argv[0] "cumulus-agent" names the agent). No shell. */
export interface Transport {
  /** Runs `argv` on the worker; rejects only when the worker cannot be reached. */
  run(argv: string[], opts?: { timeoutMs?: number }): Promise<RunResult>;
}

/** Where the local agent is and what it gets. */
export interface LocalTransportOptions {
  /** argv prefix that replaces "cumulus-agent" (see {@link localAgentCommand}). */
  agentCommand: string[];
  /** Extra environment (CHRONOS_STATE_DIR, CUMULUS_CHRONOS_PATH). */
  env?: Record<string, string>;
  /** Default per-command time limit. */
  timeoutMs?: number;
}

/** The local agent could not be started or did not answer in time. */
export class LocalAgentError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LocalAgentError";
  }
}

/**
 * The agent's command line on this machine: `configured` split on spaces when
 * given, else the compiled `cumulus-agent` next to the running executable,
 * else `deno run -A <repo>/src/agent/main.ts`.
 * @example
 * localAgentCommand(""); // ["/usr/local/bin/cumulus-agent"] or [deno, "run", "-A", ".../main.ts"]
 */
export function localAgentCommand(
  configured: string,
  exists: (path: string) => boolean = fileExists,
): string[] {
  if (configured.trim() !== "") return configured.trim().split(/\s+/);
  const exec = Deno.execPath();
  const beside = `${exec.slice(0, exec.lastIndexOf("/"))}/cumulus-agent`;
  if (exists(beside)) return [beside];
  return [exec, "run", "-A", fileURLToPath(new URL("../agent/main.ts", import.meta.url))];
}

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Runs agent commands as child processes of the orchestrator (argv only). */
export class LocalTransport implements Transport {
  #o: LocalTransportOptions;

  /** Creates the transport. */
  constructor(opts: LocalTransportOptions) {
    this.#o = opts;
  }

  /** Runs `argv` with "cumulus-agent" replaced by the local agent's command line. */
  async run(argv: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    const full = argv[0] === "cumulus-agent"
      ? [...this.#o.agentCommand, ...argv.slice(1)]
      : [...argv];
    const signal = AbortSignal.timeout(opts.timeoutMs ?? this.#o.timeoutMs ?? 30_000);
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(full[0], {
        args: full.slice(1),
        env: this.#o.env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal,
      }).output();
    } catch (err) {
      throw new LocalAgentError(`cannot run ${full[0]}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (signal.aborted) {
      throw new LocalAgentError(`${argv.join(" ")} did not finish in time`);
    }
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  }
}
