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
  type JobState,
  partitionsOf,
  UnavailableError,
  wantsWholeGpus,
} from "../core/mod.ts";
import { canEverFit, type GpuDemand, type NodeCapacity, shareOf } from "../scheduler/mod.ts";
import type { JobStore } from "../store/mod.ts";
import {
  AgentCommandError,
  type AgentPartition,
  type NodeInventory,
  withPartitions,
  type WorkerRegistry,
} from "../workers/mod.ts";

/**
 * How long placement, admission and acquire reuse one inventory read, ms. The partitions this
 * orchestrator creates and releases are written into the cached read as they happen, so within
 * this window it is stale only about changes made by others (expiry, a hand release: capacity
 * seen late; another orchestrator's create: a refused create, after which the cache is dropped).
 */
export const INVENTORY_TTL_MS = 1_000;

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

/** A partition to release: its job has ended, or holds another one (an earlier attempt's). */
export interface SweepRelease {
  nodeId: string;
  partitionId: string;
  /** The partition's Chronos job id. */
  chronosJobId: string;
  /** The state of the job it belongs to. */
  state: JobState;
}

/** A partition to make again: a live job lost it before its deadline. */
export interface SweepRecreate {
  nodeId: string;
  jobId: string;
  /** Index of the lost partition in the job's partition list. */
  member: number;
  /** The id the job recorded, which the agent no longer has. */
  lostId: string;
  device: number;
  memory: number;
  durationS: number;
  owner: string;
  /** Chronos job id to create it under (`<job id>:g<k>` for a group member). */
  chronosJobId: string;
}

/** What a partition sweep does: releases first, then re-creations. */
export interface SweepPlan {
  release: SweepRelease[];
  recreate: SweepRecreate[];
}

/** What {@link planSweep} decides from. */
export interface SweepInput {
  /** Every node's inventory; nodes whose agent did not answer are left alone. */
  nodes: readonly NodeInventory[];
  /** Job records by id: every job a partition names, and every SCHEDULED or RUNNING job. */
  jobs: ReadonlyMap<string, JobRecord>;
  /** Now, epoch ms. */
  now: number;
}

/** The fraction of device `device` of node `n` that `job` takes. */
function fractionOn(job: JobRecord, n: NodeInventory, device: number): number {
  const d = n.devices.find((x) => x.index === device);
  return d ? shareOf({ ...d, free: 1 }, demandOf(job.spec)) : demandOf(job.spec).fraction || 1;
}

/**
 * Reconciles partitions with job records, deciding only: a partition whose job has ended or
 * does not hold it is released; a SCHEDULED or RUNNING job whose recorded partition the agent no
 * longer has, before its deadline, gets it re-created for the time left. Partitions of no
 * Cumulus job, and of jobs this store does not know (another orchestrator's), are left alone.
 */
export function planSweep(input: SweepInput): SweepPlan {
  const plan: SweepPlan = { release: [], recreate: [] };
  const live = [...input.jobs.values()].filter((j) =>
    j.state === "SCHEDULED" || j.state === "RUNNING"
  );
  for (const n of input.nodes) {
    if (n.agent !== "ok") continue;
    const held = new Set(n.partitions.map((p) => p.id));
    for (const p of n.partitions) {
      const jobId = partitionJob(p.jobId);
      if (!jobId) continue; // not a Cumulus job's partition
      const job = input.jobs.get(jobId);
      // Job records are written before their partitions: a job this store does not
      // know belongs to another orchestrator sharing the worker; Chronos expires it.
      if (job === undefined) continue;
      const owned = (job.state === "SCHEDULED" || job.state === "RUNNING") &&
        job.nodeId === n.node.id &&
        (partitionsOf(job).includes(p.id) || job.partitionId === PENDING_PARTITION);
      if (!owned) {
        plan.release.push({
          nodeId: n.node.id,
          partitionId: p.id,
          chronosJobId: p.jobId,
          state: job.state,
        });
      }
    }
    for (const job of live) {
      if (job.nodeId !== n.node.id) continue;
      if (!job.partitionId || job.partitionId === PENDING_PARTITION) continue;
      if (input.now >= job.deadlineMs) continue; // expired: the deadline check acts
      const ids = partitionsOf(job);
      const devices = devicesOf(job);
      ids.forEach((id, k) => {
        if (held.has(id)) return;
        plan.recreate.push({
          nodeId: n.node.id,
          jobId: job.id,
          member: k,
          lostId: id,
          device: devices[k],
          memory: fractionOn(job, n, devices[k]),
          durationS: Math.max(1, (job.deadlineMs - input.now) / 1000),
          owner: job.spec.user,
          chronosJobId: memberJobId(job.id, k, ids.length),
        });
      });
    }
  }
  return plan;
}

/** A change this orchestrator made to one node's partitions, kept to patch reads in flight. */
interface Change {
  seq: number;
  nodeId: string;
  add: AgentPartition[];
  drop: (p: AgentPartition) => boolean;
}

function applyChange(inv: NodeInventory[], c: Change): NodeInventory[] {
  return inv.map((n) => {
    if (n.node.id !== c.nodeId || n.agent !== "ok") return n;
    const kept = n.partitions.filter((p) => !c.drop(p) && !c.add.some((a) => a.id === p.id));
    return withPartitions(n, n.devices, [...kept, ...c.add]);
  });
}

/** Creates, releases and reconciles the partitions of jobs. */
export class PartitionKeeper {
  #d: PartitionDeps;
  /** The newest inventory read, kept in step with our own creates and releases. */
  #snap: { at: number; inv: NodeInventory[] } | null = null;
  /** A read under way that cached callers share. */
  #reading: Promise<NodeInventory[]> | null = null;
  #seq = 0;
  #changes: Change[] = [];
  /** Sequence numbers at which the reads under way started (their journal must be kept). */
  #readsFrom = new Set<number>();
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

  /**
   * Fresh inventory of every node; it becomes the cached one. Our own creates and releases that
   * land while it is under way are applied to it, so it never undoes them.
   */
  inventory(): Promise<NodeInventory[]> {
    const from = this.#seq;
    const at = this.#d.now();
    this.#readsFrom.add(from);
    const read = this.#d.registry.inventory().then((inv) => {
      for (const c of this.#changes) if (c.seq > from) inv = applyChange(inv, c);
      if (!this.#snap || this.#snap.at <= at) this.#snap = { at, inv };
      return inv;
    }).finally(() => {
      this.#readsFrom.delete(from);
      this.#trimChanges();
      if (this.#reading === read) this.#reading = null;
    });
    this.#reading = read;
    return read;
  }

  #listing: Promise<NodeInventory[]> | null = null;

  /**
   * The inventory for listings (ListWorkers, ListPartitions): callers at once
   * share one read, so a burst of calls never starts an agent command per
   * call; it is always a read newer than the call (hand-made changes show).
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
   * The cached inventory when it is at most `maxAgeMs` old, else the read under way, else a
   * new read: one agent read per node serves every scheduling round, admission check and
   * acquire within the window.
   */
  cachedInventory(maxAgeMs = INVENTORY_TTL_MS): Promise<NodeInventory[]> {
    if (this.#snap && this.#d.now() - this.#snap.at <= maxAgeMs) {
      return Promise.resolve(this.#snap.inv);
    }
    return this.#reading ?? this.inventory();
  }

  /** Records a change we made on `nodeId` in the cache and for the reads under way. */
  #note(nodeId: string, add: AgentPartition[], drop: (p: AgentPartition) => boolean): void {
    const c: Change = { seq: ++this.#seq, nodeId, add, drop };
    if (this.#snap) this.#snap = { at: this.#snap.at, inv: applyChange(this.#snap.inv, c) };
    this.#changes.push(c);
    this.#trimChanges();
  }

  /** Marks the cached inventory stale: the next round reads the agents again. */
  #forget(): void {
    if (this.#snap) this.#snap = { at: -Infinity, inv: this.#snap.inv };
  }

  #trimChanges(): void {
    const oldest = Math.min(...this.#readsFrom);
    this.#changes = this.#changes.filter((c) => c.seq > oldest);
  }

  /**
   * The GPU memory a placed job holds per GPU, from the last inventory read
   * (0 bytes when its node's devices are not known).
   */
  heldGpu(job: JobRecord): { bytes: number; count: number; whole: boolean } {
    const count = devicesOf(job).length;
    const whole = wantsWholeGpus(job.spec);
    const dev = this.#snap?.inv.find((n) => n.node.id === job.nodeId)?.devices
      .find((d) => d.index === job.gpuDevice);
    if (job.spec.gpuMemoryBytes) return { bytes: job.spec.gpuMemoryBytes, count, whole };
    const bytes = dev
      ? Math.floor(shareOf({ ...dev, free: 1 }, demandOf(job.spec)) * dev.memoryBytes)
      : 0;
    return { bytes, count, whole };
  }

  /** Share held per node and device, from the last inventory read (for /metrics). */
  lastShares(): Array<{ node: string; device: number; allocated: number }> {
    return (this.#snap?.inv ?? []).flatMap((n) =>
      n.devices.map((d) => ({ node: n.node.hostname, device: d.index, allocated: d.allocated }))
    );
  }

  /**
   * Placement capacities, or null when jobs go through plain Swarm placement
   * (placement off, or no agent has answered since the orchestrator started:
   * a cluster without agents). Once one has, nodes whose agent is unreachable
   * are just not candidates (possibly none: jobs wait). From the cached
   * inventory when it is at most `maxAgeMs` old.
   */
  async capacities(maxAgeMs = INVENTORY_TTL_MS): Promise<NodeCapacity[] | null> {
    if (this.#d.mode === "off") return null;
    const inv = await this.cachedInventory(maxAgeMs);
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
    const demand = demandOf(spec);
    let caps = await this.capacities();
    // No agent answers right now: nothing is known to refuse on; the job waits.
    if (!caps || caps.length === 0) return;
    // A refusal is final, so it is decided on a fresh read, not on the cached one (up to
    // INVENTORY_TTL_MS old: a node or label added a moment ago is not in it).
    if (!canEverFit(demand, caps)) caps = await this.capacities(-1);
    if (!caps || caps.length === 0) return;
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
   * The devices of `nodeId` for an acquire: from the cached inventory (the round that placed
   * the job read it a moment ago), else one agent read.
   */
  async #devicesOf(nodeId: string): Promise<NodeInventory["devices"]> {
    const cached = this.#snap?.inv.find((n) => n.node.id === nodeId && n.agent === "ok");
    if (cached) return cached.devices;
    const read = (await this.inventory()).find((n) => n.node.id === nodeId);
    if (!read || read.agent !== "ok") {
      throw new PartitionWaitError(`waiting: agent of node ${nodeId} unreachable`);
    }
    return read.devices;
  }

  /**
   * Creates (or finds again) the partition of a job SCHEDULED with a pending
   * partition, and records its id and deadline: one agent command on the happy path
   * (a resumed attempt first frees the last attempt's). Throws {@link PartitionWaitError}
   * when it cannot be had now.
   */
  async acquire(job: JobRecord): Promise<JobRecord> {
    const agent = await this.#d.registry.agentById(job.nodeId).catch(() => null);
    if (!agent) throw new PartitionWaitError(`waiting: agent of node ${job.nodeId} unreachable`);
    try {
      if (job.attempts > 1) {
        // A resumed attempt gets a fresh partition (and deadline), never the last one's.
        await agent.releaseJob(job.id);
        this.#note(job.nodeId, [], (p) => partitionJob(p.jobId) === job.id);
      }
      const devices = await this.#devicesOf(job.nodeId);
      const wanted = devicesOf(job);
      const first = devices.find((d) => d.index === wanted[0]);
      const gone = wanted.find((i) => !devices.some((d) => d.index === i));
      if (!first || gone !== undefined) {
        throw new PartitionWaitError(`waiting: device ${gone ?? wanted[0]} is gone`);
      }
      const memory = shareOf({ ...first, free: 1 }, demandOf(job.spec));
      const req = { memory, durationS: job.spec.duration, owner: job.spec.user, jobId: job.id };
      // A whole-GPU group is created all-or-nothing by the agent: never half of it.
      const parts = wanted.length > 1
        ? await agent.createGroup({ ...req, devices: wanted })
        : [await agent.create({ ...req, device: wanted[0] })];
      this.#note(job.nodeId, parts, () => false);
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
      // The cache promised capacity the agent did not have (someone else took it): read again.
      this.#forget();
      if (err instanceof AgentCommandError && err.refusedForNow) {
        throw new PartitionWaitError(`waiting: ${err.message}`);
      }
      throw new PartitionWaitError(`waiting: agent unreachable: ${(err as Error).message}`);
    }
  }

  /** Releases every partition of the job on its node; failures are left to the sweep. */
  async release(job: JobRecord): Promise<void> {
    if (!job.partitionId || !job.nodeId) return;
    try {
      const agent = await this.#d.registry.agentById(job.nodeId);
      if (!agent) return;
      const n = await agent.releaseJob(job.id);
      this.#note(job.nodeId, [], (p) => partitionJob(p.jobId) === job.id);
      if (n) this.#d.log(`job ${job.id}: released ${n} partition(s)`);
    } catch (err) {
      this.#d.log(
        `job ${job.id}: partition release failed (the sweep retries): ${(err as Error).message}`,
      );
    }
  }

  /**
   * Reconciles partitions with jobs from a fresh inventory read ({@link planSweep}), then
   * applies the plan. Returns how many were released and re-created.
   */
  async sweep(): Promise<{ released: number; recreated: number }> {
    if (this.#d.mode === "off") return { released: 0, recreated: 0 };
    const nodes = await this.inventory();
    const jobs = new Map<string, JobRecord>();
    for (const j of this.#d.store.inStates(["SCHEDULED", "RUNNING"])) jobs.set(j.id, j);
    for (const n of nodes) {
      for (const p of n.partitions) {
        const id = partitionJob(p.jobId);
        const job = id && !jobs.has(id) ? this.#d.store.get(id) : null;
        if (job) jobs.set(id, job);
      }
    }
    const plan = planSweep({ nodes, jobs, now: this.#d.now() });
    return await this.#applySweep(nodes, plan);
  }

  async #applySweep(
    nodes: NodeInventory[],
    plan: SweepPlan,
  ): Promise<{ released: number; recreated: number }> {
    let released = 0, recreated = 0;
    const agentOf = async (nodeId: string) => {
      const node = nodes.find((n) => n.node.id === nodeId)!.node;
      const a = await this.#d.registry.agentFor(node);
      return typeof a === "string" ? null : a;
    };
    for (const r of plan.release) {
      try {
        if (await (await agentOf(r.nodeId))?.release(r.partitionId)) {
          released++;
          this.#d.log(
            `sweep: released partition ${r.partitionId} of job ${r.chronosJobId} (${r.state})`,
          );
        }
        this.#note(r.nodeId, [], (p) => p.id === r.partitionId);
      } catch (err) {
        this.#d.log(`sweep: release of ${r.partitionId} failed: ${(err as Error).message}`);
      }
    }
    // Per job: the new ids replace the lost ones in its record, once all were tried.
    const byJob = new Map<string, SweepRecreate[]>();
    for (const r of plan.recreate) byJob.set(r.jobId, [...byJob.get(r.jobId) ?? [], r]);
    for (const [jobId, lost] of byJob) {
      const job = this.#d.store.get(jobId);
      if (!job) continue;
      const ids = partitionsOf(job);
      const now = [...ids];
      for (const r of lost) {
        try {
          const agent = await agentOf(r.nodeId);
          if (!agent) continue;
          const p = await agent.create({
            device: r.device,
            memory: r.memory,
            durationS: r.durationS,
            owner: r.owner,
            jobId: r.chronosJobId,
          });
          this.#note(r.nodeId, [p], () => false);
          now[r.member] = p.id;
          recreated++;
          this.#d.log(`sweep: job ${jobId} had lost partition ${r.lostId}; re-created ${p.id}`);
        } catch (err) {
          this.#d.log(
            `sweep: job ${jobId} lost its partition and it could not be re-created: ${
              (err as Error).message
            }`,
          );
        }
      }
      if (now.some((id, k) => id !== ids[k])) {
        this.#d.store.update(jobId, { partitionId: now[0], partitionIds: now });
      }
    }
    return { released, recreated };
  }
}
