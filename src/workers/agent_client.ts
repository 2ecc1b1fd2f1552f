/**
 * Typed calls to one worker's `cumulus-agent` (its `--json` commands) over a
 * {@link Transport}. Knows the agent's JSON shapes and exit codes, nothing
 * about jobs.
 * @module
 */
import type { Transport } from "./transport.ts";

/** The physical GPU behind a device, as `cumulus-agent gpus --json` reports it. */
export interface AgentGpu {
  /** "nvidia", "amd" or "intel". */
  vendor: string;
  /** NVIDIA's `GPU-…` UUID; "" for other vendors. */
  uuid: string;
  /** PCI address, e.g. `0000:19:00.0`. */
  pciBusId: string;
  /** NVIDIA device minor; null for other vendors. */
  minor: number | null;
  /** Device nodes a job on this GPU gets. */
  devices: string[];
}

/** One device as `cumulus-agent gpus --json` reports it. */
export interface AgentDevice {
  /** Chronos device index. */
  index: number;
  /** Device name (OpenCL). */
  name: string;
  /** "GPU", "CPU", "ACCELERATOR" or "OTHER". */
  type: string;
  /** Global memory in bytes. */
  totalMemoryBytes: number;
  /** PCI address ("" when unknown; absent from agents older than issue 13). */
  pciBusId?: string;
  /** The GPU the device is; null (or absent, older agents) when it maps to none. */
  gpu?: AgentGpu | null;
}

/** `cumulus-agent gpus --json`: the worker's access kind and its devices. */
export interface AgentInventory {
  /** "nvidia", "nvidia-toolkit", "amd", "intel" or "none" (older agents: "none"). */
  access: string;
  /** The devices Chronos manages. */
  devices: AgentDevice[];
}

/** Parameters of {@link AgentClient.createGroup}. */
export interface CreateGroupRequest {
  /** Chronos device indexes, in GPU order (1..8, each once). */
  devices: number[];
  /** Fraction of each device (1 when several devices). */
  memory: number;
  /** Lifetime in seconds. */
  durationS: number;
  /** User name of the holder. */
  owner: string;
  /** Cumulus job id; members get Chronos job ids `<jobId>:g<k>` (plain for one device). */
  jobId: string;
  /** MPS compute share in percent (1..100) for fractional NVIDIA partitions; none by default. */
  computeShare?: number;
}

/** One live partition as `partition list --json` reports it. */
export interface AgentPartition {
  /** "p-" + 12 hex digits. */
  id: string;
  /** Chronos device index. */
  device: number;
  /** Fraction of the device's memory, 0 < f <= 1. */
  memory: number;
  /** Bytes of the device it holds. */
  memoryBytes: number;
  /** User name of the holder. */
  owner: string;
  /** Chronos job id: the Cumulus job id, or `<job id>:g<k>` for a group member; "" for none. */
  jobId: string;
  /** Creation time, epoch ms. */
  startMs: number;
  /** Expiry time, epoch ms. */
  expiresAtMs: number;
  /** Lifetime in seconds. */
  durationS: number;
}

/**
 * Exit codes of `cumulus-agent` that Cumulus acts on: the agent exits with
 * Chronos's own status (chronos.h), and 2 for a usage error (a command an
 * older agent does not know). A test checks them against the agent's table.
 */
export const AgentExit = {
  USAGE: 2,
  NOT_FOUND: 3,
  NO_CAPACITY: 4,
  FAIR_SHARE: 5,
} as const;

/** A created (or, by job id, found again) partition. */
export interface CreatedPartition extends AgentPartition {
  /** True when the job already held it (an idempotent retry). */
  existing: boolean;
}

/** The agent answered with an error (its exit code and Chronos error code). */
export class AgentCommandError extends Error {
  /** Exit status ({@link AgentExit}: Chronos's status, or 2 for usage). */
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

  /** True when Chronos refused for now (no capacity or fair share): the job waits. */
  get refusedForNow(): boolean {
    return this.status === AgentExit.NO_CAPACITY || this.status === AgentExit.FAIR_SHARE;
  }
}

function computeShareArgs(share: number | undefined): string[] {
  return share === undefined ? [] : ["--compute-share", String(share)];
}

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

  /** The worker's devices, each with its GPU (`gpu`, null without device access). */
  async gpus(): Promise<AgentDevice[]> {
    return (await this.inventory()).devices;
  }

  /** The worker's access kind and devices (`gpus --json`). */
  async inventory(): Promise<AgentInventory> {
    const body = await this.#json(["gpus"]);
    return {
      access: typeof body.access === "string" ? body.access : "none",
      devices: (body.devices as AgentDevice[] | undefined) ?? [],
    };
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
    req: {
      device: number;
      memory: number;
      durationS: number;
      owner: string;
      jobId: string;
      computeShare?: number;
    },
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
      ...computeShareArgs(req.computeShare),
    ]);
    return { ...(body as unknown as AgentPartition), existing: body.existing === true };
  }

  /**
   * Creates one partition per device for `jobId`, all or nothing (the agent releases what it
   * made when one fails, and throws the failing status); partitions the job already holds come
   * back with `existing: true`. In device order.
   */
  async createGroup(req: CreateGroupRequest): Promise<CreatedPartition[]> {
    const body = await this.#json([
      "partition",
      "create-group",
      req.devices.join(","),
      String(req.memory),
      String(req.durationS),
      "--owner",
      req.owner,
      "--job",
      req.jobId,
      ...computeShareArgs(req.computeShare),
    ]);
    return ((body.partitions as Record<string, unknown>[] | undefined) ?? []).map((p) => ({
      ...(p as unknown as AgentPartition),
      existing: p.existing === true,
    }));
  }

  /** Releases one partition; false when it was gone already. */
  async release(partitionId: string): Promise<boolean> {
    try {
      await this.#json(["partition", "release", partitionId]);
      return true;
    } catch (err) {
      if (err instanceof AgentCommandError && err.status === AgentExit.NOT_FOUND) return false;
      throw err;
    }
  }

  /** Releases every partition of a job (none is fine); returns how many went. */
  async releaseJob(jobId: string): Promise<number> {
    try {
      const body = await this.#json(["partition", "release-job", jobId]);
      return ((body.released as unknown[] | undefined) ?? []).length;
    } catch (err) {
      if (!(err instanceof AgentCommandError && err.status === AgentExit.USAGE)) throw err;
    }
    // An agent without release-job: list, then release by id.
    let n = 0;
    for (const p of await this.list()) {
      if (p.jobId === jobId && await this.release(p.id)) n++;
    }
    return n;
  }
}
