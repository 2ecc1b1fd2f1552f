/**
 * Chronos partitions around jobs: placement of queued jobs on the agents'
 * free shares, creating a job's partition (idempotent by job id), releasing it
 * however the job ends, and reconciling orphans on both sides.
 *
 * A job placed through partitions is SCHEDULED with `partitionId = "pending"`,
 * its node and device recorded first; the runner then creates the partition
 * and records its id and deadline before the service is created. A crash in
 * between is harmless: the create is idempotent by job id, and the sweep
 * releases any partition whose job has ended or never recorded it.
 * @module
 */
import {
  devicesOf,
  formatBytes,
  type JobRecord,
  type JobSpec,
  partitionsOf,
  UnavailableError,
  wantsWholeGpus,
} from "../core/mod.ts";
import { canEverFit, type GpuDemand, type NodeCapacity, shareOf } from "../scheduler/mod.ts";
import type { JobStore } from "../store/mod.ts";
import { AgentCommandError, type NodeInventory, type WorkerRegistry } from "../workers/mod.ts";

/** Marker in `partitionId`: placed, partition not created yet. */
export const PENDING_PARTITION = "pending";

const JOB_ID_RE = /^j-[0-9a-f]{12}$/;
/** Chronos job ids of a group's partitions: `<job id>:g<k>` (one partition per job id). */
const GROUP_MEMBER_RE = /^(j-[0-9a-f]{12}):g(\d{1,2})$/;

/** The Cumulus job a partition's Chronos job id belongs to ("" when none). */
export function partitionJob(chronosJobId: string): string {
  if (JOB_ID_RE.test(chronosJobId)) return chronosJobId;
  return GROUP_MEMBER_RE.exec(chronosJobId)?.[1] ?? "";
}

/** The Chronos job id of member `k` of a job's partitions (plain for one GPU). */
export function memberJobId(jobId: string, k: number, count: number): string {
  return count > 1 ? `${jobId}:g${k}` : jobId;
}

/** What a job asks of the GPUs, for the placement policy. */
export function demandOf(spec: JobSpec): GpuDemand {
  return {
    fraction: spec.gpuMemoryBytes ? 0 : spec.gpuMemory,
    bytes: spec.gpuMemoryBytes ?? 0,
    count: spec.gpuCount,
    constraints: spec.constraints,
  };
}

/** Nodes whose agent answered, as the placement policy sees them. */
export function capacities(inv: readonly NodeInventory[]): NodeCapacity[] {
  return inv.filter((n) => n.agent === "ok" && n.devices.length > 0).map((n) => ({
    nodeId: n.node.id,
    hostname: n.node.hostname,
    role: n.node.role,
    labels: n.node.labels,
    schedulable: n.node.state === "ready" && n.node.availability === "active",
    devices: n.devices.map((d) => ({
      index: d.index,
      name: d.name,
      memoryBytes: d.memoryBytes,
      free: d.free,
    })),
  }));
}

/** A job could not get its partition now (capacity taken, agent away): it waits. */
export class PartitionWaitError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "PartitionWaitError";
  }
}

/** What the keeper needs. */
export interface PartitionDeps {
  registry: WorkerRegistry;
  store: JobStore;
  /** "auto" or "off" (config gpu_placement). */
  mode: "auto" | "off";
  now: () => number;
  log: (msg: string) => void;
}

/** Creates, releases and reconciles the partitions of jobs. */
export class PartitionKeeper {
  #d: PartitionDeps;
  #cache: { at: number; inv: Promise<NodeInventory[]> } | null = null;
  /** Some agent has answered since start: from then on, GPU jobs wait for agents. */
  #everAnswered = false;

  /** Creates the keeper. */
  constructor(deps: PartitionDeps) {
    this.#d = deps;
  }

  /** The worker registry. */
  get registry(): WorkerRegistry {
    return this.#d.registry;
  }

  #last: NodeInventory[] = [];

  /** Fresh inventory of every node (also refreshes the short-lived cache). */
  inventory(): Promise<NodeInventory[]> {
    const inv = this.#d.registry.inventory();
    this.#cache = { at: this.#d.now(), inv };
    inv.then((v) => this.#last = v, () => {});
    return inv;
  }

  #listing: Promise<NodeInventory[]> | null = null;

  /**
   * The inventory for listings (ListWorkers, ListPartitions): callers at once
   * share one read, so a burst of calls never starts an agent command per
   * call. Placement never uses it: it must see partitions created a moment ago.
   */
  listingInventory(): Promise<NodeInventory[]> {
    if (this.#listing) return this.#listing;
    const inv = this.inventory();
    this.#listing = inv;
    const clear = () => {
      if (this.#listing === inv) this.#listing = null;
    };
    inv.then(clear, clear);
    return inv;
  }

  /**
   * The GPU memory a placed job holds per GPU, from the last inventory read
   * (0 bytes when its node's devices are not known).
   */
  heldGpu(job: JobRecord): { bytes: number; count: number; whole: boolean } {
    const count = devicesOf(job).length;
    const whole = wantsWholeGpus(job.spec);
    const dev = this.#last.find((n) => n.node.id === job.nodeId)?.devices
      .find((d) => d.index === job.gpuDevice);
    if (job.spec.gpuMemoryBytes) return { bytes: job.spec.gpuMemoryBytes, count, whole };
    const bytes = dev
      ? Math.floor(shareOf({ ...dev, free: 1 }, demandOf(job.spec)) * dev.memoryBytes)
      : 0;
    return { bytes, count, whole };
  }

  /** Share held per node and device, from the last inventory read (for /metrics). */
  lastShares(): Array<{ node: string; device: number; allocated: number }> {
    return this.#last.flatMap((n) =>
      n.devices.map((d) => ({ node: n.node.hostname, device: d.index, allocated: d.allocated }))
    );
  }

  /**
   * Placement capacities, or null when jobs go through plain Swarm placement
   * (placement off, or no agent has answered since the orchestrator started:
   * a cluster without agents). Once one has, nodes whose agent is unreachable
   * are just not candidates (possibly none: jobs wait).
   */
  async capacities(maxAgeMs = 0): Promise<NodeCapacity[] | null> {
    if (this.#d.mode === "off") return null;
    const inv = this.#cache && this.#d.now() - this.#cache.at <= maxAgeMs
      ? await this.#cache.inv
      : await this.inventory();
    const caps = capacities(inv);
    if (caps.length > 0) this.#everAnswered = true;
    if (!this.#everAnswered) return null;
    // Placed jobs whose partition is being created hold their share already.
    const listed = new Set(inv.flatMap((n) => n.partitions.map((p) => partitionJob(p.jobId))));
    for (const job of this.#d.store.inStates(["SCHEDULED"])) {
      if (job.partitionId !== PENDING_PARTITION || listed.has(job.id)) continue;
      const node = caps.find((n) => n.nodeId === job.nodeId);
      for (const index of devicesOf(job)) {
        const dev = node?.devices.find((d) => d.index === index);
        if (dev) dev.free = Math.max(0, dev.free - shareOf(dev, demandOf(job.spec)));
      }
    }
    return caps;
  }

  /** Refuses (UNAVAILABLE) a job that no known node could ever hold. */
  async checkFits(spec: JobSpec): Promise<void> {
    const caps = await this.capacities(2000);
    // No agent answers right now: nothing is known to refuse on; the job waits.
    if (!caps || caps.length === 0) return;
    const demand = demandOf(spec);
    if (!canEverFit(demand, caps)) {
      const what = demand.count > 1
        ? `${demand.count} whole GPUs on one worker`
        : demand.bytes > 0
        ? formatBytes(demand.bytes)
        : demand.fraction >= 1
        ? "a whole GPU"
        : `${demand.fraction} of a device`;
      const have = caps.map((n) =>
        `${n.hostname}: ${n.devices.length} device(s)` +
        (n.devices.length > 0
          ? ` (${n.devices.slice(0, 8).map((d) => formatBytes(d.memoryBytes)).join(", ")})`
          : "")
      ).slice(0, 8).join("; ");
      throw new UnavailableError(`no worker can ever fit this job: it needs ${what} (${have})`);
    }
  }

  /**
   * Creates (or finds again) the partition of a job SCHEDULED with a pending
   * partition, and records its id and deadline. Throws {@link PartitionWaitError}
   * when it cannot be had now.
   */
  async acquire(job: JobRecord): Promise<JobRecord> {
    const agent = await this.#d.registry.agentById(job.nodeId).catch(() => null);
    if (!agent) throw new PartitionWaitError(`waiting: agent of node ${job.nodeId} unreachable`);
    try {
      if (job.attempts > 1) {
        // A resumed attempt gets a fresh partition (and deadline), never the last one's.
        await agent.releaseJob(job.id);
      }
      const devices = await agent.gpus();
      const wanted = devicesOf(job);
      const first = devices.find((d) => d.index === wanted[0]);
      const gone = wanted.find((i) => !devices.some((d) => d.index === i));
      if (!first || gone !== undefined) {
        throw new PartitionWaitError(`waiting: device ${gone ?? wanted[0]} is gone`);
      }
      const memory = shareOf(
        { index: first.index, name: first.name, memoryBytes: first.totalMemoryBytes, free: 1 },
        demandOf(job.spec),
      );
      const req = { memory, durationS: job.spec.duration, owner: job.spec.user, jobId: job.id };
      // A whole-GPU group is created all-or-nothing by the agent: never half of it.
      const parts = wanted.length > 1
        ? await agent.createGroup({ ...req, devices: wanted })
        : [await agent.create({ ...req, device: wanted[0] })];
      for (const p of parts) {
        this.#d.log(
          `job ${job.id}: partition ${p.id} ${p.existing ? "found again" : "created"} on ` +
            `device ${p.device} (${p.memory}) until ${new Date(p.expiresAtMs).toISOString()}`,
        );
      }
      return this.#d.store.update(job.id, {
        partitionId: parts[0].id,
        partitionIds: parts.map((p) => p.id),
        gpuDevices: parts.map((p) => p.device),
        deadlineMs: Math.min(...parts.map((p) => p.expiresAtMs)),
      });
    } catch (err) {
      if (err instanceof PartitionWaitError) throw err;
      if (err instanceof AgentCommandError && err.refusedForNow) {
        throw new PartitionWaitError(`waiting: ${err.message}`);
      }
      throw new PartitionWaitError(`waiting: agent unreachable: ${(err as Error).message}`);
    }
  }

  #fraction(job: JobRecord, n: NodeInventory, device: number): number {
    const d = n.devices.find((x) => x.index === device);
    return d ? shareOf({ ...d, free: 1 }, demandOf(job.spec)) : demandOf(job.spec).fraction || 1;
  }

  /** Releases every partition of the job on its node; failures are left to the sweep. */
  async release(job: JobRecord): Promise<void> {
    if (!job.partitionId || !job.nodeId) return;
    try {
      const agent = await this.#d.registry.agentById(job.nodeId);
      const n = await agent?.releaseJob(job.id);
      if (n) this.#d.log(`job ${job.id}: released ${n} partition(s)`);
    } catch (err) {
      this.#d.log(
        `job ${job.id}: partition release failed (the sweep retries): ${(err as Error).message}`,
      );
    }
  }

  /**
   * Reconciles partitions with jobs: releases a partition whose job has ended
   * or does not hold it (another attempt's); re-creates the partition of a running job
   * that lost its partition before its deadline. Returns how many were released.
   */
  async sweep(): Promise<{ released: number; recreated: number }> {
    if (this.#d.mode === "off") return { released: 0, recreated: 0 };
    let released = 0, recreated = 0;
    for (const n of await this.inventory()) {
      if (n.agent !== "ok") continue;
      const agent = await this.#d.registry.agentFor(n.node);
      if (typeof agent === "string") continue;
      const heldIds = new Set(n.partitions.map((p) => p.id));
      for (const p of n.partitions) {
        const jobId = partitionJob(p.jobId);
        if (!jobId) continue; // not a Cumulus job's partition
        const job = this.#d.store.get(jobId);
        // Job records are written before their partitions: a job this store does not
        // know belongs to another orchestrator sharing the worker; Chronos expires it.
        if (job === null) continue;
        const owned = (job.state === "SCHEDULED" || job.state === "RUNNING") &&
          job.nodeId === n.node.id &&
          (partitionsOf(job).includes(p.id) || job.partitionId === PENDING_PARTITION);
        if (owned) continue;
        try {
          if (await agent.release(p.id)) {
            released++;
            this.#d.log(
              `sweep: released partition ${p.id} of job ${p.jobId} (${
                job ? job.state : "unknown job"
              })`,
            );
          }
        } catch (err) {
          this.#d.log(`sweep: release of ${p.id} failed: ${(err as Error).message}`);
        }
      }
      // A job that runs with a recorded partition the agent no longer has.
      for (const job of this.#d.store.inStates(["SCHEDULED", "RUNNING"])) {
        if (job.nodeId !== n.node.id) continue;
        if (!job.partitionId || job.partitionId === PENDING_PARTITION) continue;
        if (this.#d.now() >= job.deadlineMs) continue; // expired: the deadline check acts
        const ids = partitionsOf(job);
        const devices = devicesOf(job);
        const lost = ids.map((id, k) => ({ id, k })).filter(({ id }) => !heldIds.has(id));
        if (lost.length === 0) continue;
        const now = [...ids];
        for (const { k } of lost) {
          try {
            const p = await agent.create({
              device: devices[k],
              memory: this.#fraction(job, n, devices[k]),
              durationS: Math.max(1, (job.deadlineMs - this.#d.now()) / 1000),
              owner: job.spec.user,
              jobId: memberJobId(job.id, k, ids.length),
            });
            now[k] = p.id;
            recreated++;
            this.#d.log(`sweep: job ${job.id} had lost partition ${ids[k]}; re-created ${p.id}`);
          } catch (err) {
            this.#d.log(
              `sweep: job ${job.id} lost its partition and it could not be re-created: ${
                (err as Error).message
              }`,
            );
          }
        }
        if (now.some((id, k) => id !== ids[k])) {
          this.#d.store.update(job.id, { partitionId: now[0], partitionIds: now });
        }
      }
    }
    return { released, recreated };
  }
}
