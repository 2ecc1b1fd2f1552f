/**
 * Typed calls to one worker's `cumulus-agent` (its `--json` commands) over a
 * {@link Transport}. Knows the agent's JSON shapes and exit codes, nothing
 * about jobs.
 * @module
 */
import type { Transport } from "./transport.ts";

/** One device as `cumulus-agent gpus --json` reports it. */
export interface AgentDevice {
  index: number;
  name: string;
  type: string;
  totalMemoryBytes: number;
}

/** One live partition as `partition list --json` reports it. */
export interface AgentPartition {
  id: string;
  device: number;
  memory: number;
  memoryBytes: number;
  owner: string;
  jobId: string;
  startMs: number;
  expiresAtMs: number;
  durationS: number;
}

/** A created (or, by job id, found again) partition. */
export interface CreatedPartition extends AgentPartition {
  /** True when the job already held it (an idempotent retry). */
  existing: boolean;
}

/** The agent answered with an error (its exit code and Chronos error code). */
export class AgentCommandError extends Error {
  /** Exit status (4 no capacity, 5 fair share, 3 not found, 2 usage, …). */
  readonly status: number;
  /** Chronos error code ("NO_CAPACITY", …) or "" when the agent printed none. */
  readonly chronosCode: string;
  /** Creates the error. */
  constructor(status: number, chronosCode: string, message: string) {
    super(message);
    this.name = "AgentCommandError";
    this.status = status;
    this.chronosCode = chronosCode;
  }
}

/** Exit code of the agent for a command it does not know (an older agent). */
const USAGE_EXIT = 2;

/** One worker's agent. */
export class AgentClient {
  #t: Transport;
  #timeoutMs: number;

  /** Wraps a transport; `timeoutMs` bounds each command. */
  constructor(transport: Transport, timeoutMs = 20_000) {
    this.#t = transport;
    this.#timeoutMs = timeoutMs;
  }

  async #json(args: string[]): Promise<Record<string, unknown>> {
    const res = await this.#t.run(["cumulus-agent", ...args, "--json"], {
      timeoutMs: this.#timeoutMs,
    });
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(res.stdout.trim().split("\n").pop() || "{}");
    } catch {
      // Not JSON: reported below with stderr.
    }
    if (res.code !== 0) {
      const e = (body.error ?? {}) as { code?: string; message?: string };
      const why = e.message || res.stderr.trim().split("\n").pop() || `exit code ${res.code}`;
      throw new AgentCommandError(
        res.code,
        e.code ?? "",
        `cumulus-agent ${args[0]} ${args[1] ?? ""}`.trim() + `: ${why}`,
      );
    }
    return body;
  }

  /** The worker's devices. */
  async gpus(): Promise<AgentDevice[]> {
    const body = await this.#json(["gpus"]);
    return (body.devices as AgentDevice[] | undefined) ?? [];
  }

  /** Live partitions on the worker. */
  async list(): Promise<AgentPartition[]> {
    const body = await this.#json(["partition", "list"]);
    return (body.partitions as AgentPartition[] | undefined) ?? [];
  }

  /**
   * Creates a partition for `jobId`, or returns the one it holds already (the
   * agent is idempotent by job id, so a retry after a lost answer never makes two).
   */
  async create(
    req: { device: number; memory: number; durationS: number; owner: string; jobId: string },
  ): Promise<CreatedPartition> {
    const body = await this.#json([
      "partition",
      "create",
      String(req.device),
      String(req.memory),
      String(req.durationS),
      "--owner",
      req.owner,
      "--job",
      req.jobId,
    ]);
    return { ...(body as unknown as AgentPartition), existing: body.existing === true };
  }

  /** Releases one partition; false when it was gone already. */
  async release(partitionId: string): Promise<boolean> {
    try {
      await this.#json(["partition", "release", partitionId]);
      return true;
    } catch (err) {
      if (err instanceof AgentCommandError && err.status === 3) return false;
      throw err;
    }
  }

  /** Releases every partition of a job (none is fine); returns how many went. */
  async releaseJob(jobId: string): Promise<number> {
    try {
      const body = await this.#json(["partition", "release-job", jobId]);
      return ((body.released as unknown[] | undefined) ?? []).length;
    } catch (err) {
      if (!(err instanceof AgentCommandError && err.status === USAGE_EXIT)) throw err;
    }
    // An agent without release-job: list, then release by id.
    let n = 0;
    for (const p of await this.list()) {
      if (p.jobId === jobId && await this.release(p.id)) n++;
    }
    return n;
  }
}
