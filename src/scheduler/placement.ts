/**
 * Pure GPU placement: given what a job asks for and what each node's devices
 * have free (from the agents' partition lists), pick a node and devices, say
 * why nothing fits now, or that nothing ever can.
 * @module
 */
import { formatBytes } from "../core/bytes.ts";

/** One device of a node, as the placement sees it. */
export interface DeviceCapacity {
  index: number;
  name: string;
  /** Total memory in bytes (turns absolute sizes into fractions). */
  memoryBytes: number;
  /** Fraction of the device not held by partitions now (0..1). */
  free: number;
}

/** A node whose agent answered. */
export interface NodeCapacity {
  nodeId: string;
  hostname: string;
  role: string;
  labels: Record<string, string>;
  /** Ready and active: may get new jobs. */
  schedulable: boolean;
  devices: DeviceCapacity[];
}

/** What a job asks of the GPUs. */
export interface GpuDemand {
  /** Fraction of one device (0 when `bytes` is set). */
  fraction: number;
  /** Absolute bytes per device (0 when `fraction` is set). */
  bytes: number;
  /** Devices wanted, all on one node. */
  count: number;
  /** Swarm placement constraints of the job ("key==value" / "key!=value"). */
  constraints: readonly string[];
}

/** Where a job goes: a node and, per wanted device, its index and fraction. */
export interface Placement {
  nodeId: string;
  hostname: string;
  devices: Array<{ index: number; fraction: number }>;
}

/** Tolerance for float sums of fractions (Chronos admits up to 1.0 exactly). */
const EPS = 1e-9;

/** The fraction of `device` the demand needs (> 1 when it can never fit there). */
export function fractionOn(device: DeviceCapacity, demand: GpuDemand): number {
  if (demand.bytes > 0) {
    return device.memoryBytes > 0 ? demand.bytes / device.memoryBytes : Infinity;
  }
  return demand.fraction;
}

/**
 * The share to ask Chronos for: {@link fractionOn} rounded up to 6 decimals,
 * so an absolute size never gets a few bytes less than it asked for.
 * @example
 * shareOf({ index: 0, name: "H100", memoryBytes: 85017493504, free: 1 },
 *   { fraction: 0, bytes: 20 * 1024 ** 3, count: 1, constraints: [] }); // 0.252594
 */
export function shareOf(device: DeviceCapacity, demand: GpuDemand): number {
  const need = fractionOn(device, demand);
  return Math.min(1, Math.ceil(need * 1e6 - 1e-6) / 1e6);
}

/**
 * Whether a node satisfies the job's constraints on node.id, node.hostname,
 * node.role and node.labels.*; other attributes are left to Swarm (true).
 */
export function matchesConstraints(node: NodeCapacity, constraints: readonly string[]): boolean {
  for (const c of constraints) {
    const m = /^\s*([A-Za-z0-9_.\-]+)\s*(==|!=)\s*(.+?)\s*$/.exec(c);
    if (!m) continue;
    const [, key, op, want] = m;
    let have: string | undefined;
    if (key === "node.id") have = node.nodeId;
    else if (key === "node.hostname") have = node.hostname;
    else if (key === "node.role") have = node.role;
    else if (key.startsWith("node.labels.")) have = node.labels[key.slice("node.labels.".length)];
    else continue;
    if ((have === want) !== (op === "==")) return false;
  }
  return true;
}

function pick(node: NodeCapacity, demand: GpuDemand, free: (d: DeviceCapacity) => number) {
  const fits = node.devices
    .filter((d) => {
      const raw = fractionOn(d, demand);
      return raw > 0 && raw <= 1 + EPS;
    })
    // The share asked of Chronos (rounded up) is what must be free.
    .map((d) => ({ d, need: shareOf(d, demand) }))
    .filter(({ d, need }) => need <= free(d) + EPS)
    // Best fit: the fullest device that still fits keeps whole devices free for big jobs.
    .sort((a, b) => free(a.d) - a.need - (free(b.d) - b.need) || a.d.index - b.d.index);
  if (fits.length < demand.count) return null;
  return fits.slice(0, demand.count).map(({ d, need }) => ({ index: d.index, fraction: need }));
}

/**
 * A node and devices where the demand fits now, or null. Nodes are tried in
 * order of most free memory on their best device, so jobs spread out.
 * @example
 * place({ fraction: 0.5, bytes: 0, count: 1, constraints: [] }, nodes);
 */
export function place(demand: GpuDemand, nodes: readonly NodeCapacity[]): Placement | null {
  const candidates = nodes
    .filter((n) => n.schedulable && matchesConstraints(n, demand.constraints))
    .sort((a, b) =>
      Math.max(0, ...b.devices.map((d) => d.free)) - Math.max(0, ...a.devices.map((d) => d.free))
    );
  for (const n of candidates) {
    const devices = pick(n, demand, (d) => d.free);
    if (devices) return { nodeId: n.nodeId, hostname: n.hostname, devices };
  }
  return null;
}

/** Whether the demand could fit on some known node once every partition there is gone. */
export function canEverFit(demand: GpuDemand, nodes: readonly NodeCapacity[]): boolean {
  return nodes.some((n) =>
    matchesConstraints(n, demand.constraints) && pick(n, demand, () => 1) !== null
  );
}

function describe(demand: GpuDemand): string {
  const what = demand.bytes > 0 ? formatBytes(demand.bytes) : String(demand.fraction);
  return demand.count > 1
    ? `${demand.count} devices with ${what} free`
    : `no device with ${what} free`;
}

/**
 * Why a job waits, naming each candidate device's free share, e.g.
 * `waiting: no device with 0.5 free (node1 gpu0: 0.0 free)`.
 */
export function waitingReason(demand: GpuDemand, nodes: readonly NodeCapacity[]): string {
  const parts: string[] = [];
  for (const n of nodes) {
    if (!matchesConstraints(n, demand.constraints)) continue;
    if (!n.schedulable) {
      parts.push(`${n.hostname}: not accepting jobs`);
      continue;
    }
    for (const d of n.devices) parts.push(`${n.hostname} gpu${d.index}: ${d.free.toFixed(2)} free`);
  }
  const head = demand.count > 1
    ? `waiting: no node with ${describe(demand)}`
    : `waiting: ${describe(demand)}`;
  return parts.length > 0 ? `${head} (${parts.slice(0, 8).join(", ")})` : head;
}
