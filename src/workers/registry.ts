/**
 * The workers as the orchestrator knows them: each Swarm node, the agent that
 * serves it (local for the manager's own node, SSH for configured hosts), its
 * GPUs and live partitions. Reading the inventory also labels the Swarm node
 * (gpu.count, gpu.<i>.name, gpu.<i>.memory).
 * @module
 */
import type { NodeInfo, SwarmClient } from "../swarm/mod.ts";
import { AgentClient, type AgentDevice, type AgentPartition } from "./agent_client.ts";
import type { Transport } from "./transport.ts";
import { type JoinedWorker, workerOfNode } from "./joined.ts";

/** An SSH target of a worker's agent. */
export interface SshTarget {
  user: string;
  host: string;
  port: number;
}

/** One device with its current use. */
export interface DeviceUse {
  index: number;
  name: string;
  memoryBytes: number;
  /** Fraction held by partitions. */
  allocated: number;
  /** Fraction free now. */
  free: number;
  partitions: number;
  /** The physical GPU behind the device ("" when it maps to none: no device access). */
  uuid: string;
  pciBusId: string;
  /** "nvidia", "amd", "intel" or "" (no device access). */
  vendor: string;
}

/** A node, its agent's state, devices and partitions. */
export interface NodeInventory {
  node: NodeInfo;
  /** "ok", "agent unreachable: <reason>" or "no agent". */
  agent: string;
  /**
   * How jobs reach the node's GPUs, as its agent reports it: "nvidia",
   * "nvidia-toolkit", "amd", "intel", or "none" (also when the agent is away).
   */
  access: string;
  devices: DeviceUse[];
  partitions: AgentPartition[];
}

/** What the registry needs. */
export interface RegistryDeps {
  swarm: SwarmClient;
  /** Transport to the manager's own node. */
  local: Transport;
  /** Config `workers`: "hostname=user@host:port,…". */
  workers: string;
  /**
   * Workers that joined with a join token (read on every lookup, so one that
   * joins is served without a restart). @default none
   */
  joined?: () => JoinedWorker[];
  /** Makes an SSH transport (src/ssh); absent until it is wired. */
  ssh?: (target: SshTarget) => Transport;
  log: (msg: string) => void;
}

/** Label keys the registry owns on each node. */
export const GPU_LABEL_PREFIX = "gpu.";

/** Parses the config `workers` string into hostname → SSH target. */
export function parseWorkerTargets(text: string): Map<string, SshTarget> {
  const out = new Map<string, SshTarget>();
  for (const item of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const [host, target] = item.split("=", 2);
    const at = target.indexOf("@");
    const hostPort = target.slice(at + 1);
    const colon = hostPort.lastIndexOf(":");
    out.set(host, {
      user: target.slice(0, at),
      host: colon > 0 ? hostPort.slice(0, colon) : hostPort,
      port: colon > 0 ? Number(hostPort.slice(colon + 1)) : 22,
    });
  }
  return out;
}

/** A device as it is, apart from its use. */
export type DeviceInfo = Omit<DeviceUse, "allocated" | "free" | "partitions">;

/**
 * `inv` with `partitions` as its live partitions and each device's use computed from them
 * (`devices` default: inv's own). Pure: the orchestrator keeps a cached inventory in step with
 * the partitions it creates and releases itself through this.
 */
export function withPartitions(
  inv: NodeInventory,
  devices: readonly DeviceInfo[],
  partitions: AgentPartition[],
): NodeInventory {
  const use = devices.map((d): DeviceUse => {
    const held = partitions.filter((p) => p.device === d.index);
    const allocated = Math.min(1, held.reduce((s, p) => s + p.memory, 0));
    return {
      index: d.index,
      name: d.name,
      memoryBytes: d.memoryBytes,
      allocated: Number(allocated.toFixed(6)),
      free: Number(Math.max(0, 1 - allocated).toFixed(6)),
      partitions: held.length,
      uuid: d.uuid,
      pciBusId: d.pciBusId,
      vendor: d.vendor,
    };
  });
  return { ...inv, devices: use, partitions };
}

/** Knows which agent serves which node; reads their inventories. */
export class WorkerRegistry {
  #d: RegistryDeps;
  #targets: Map<string, SshTarget>;
  #localNodeId: Promise<string> | null = null;
  #agents = new Map<string, AgentClient>();
  #devices = new Map<string, { access: string; devices: AgentDevice[] }>();

  /** Creates the registry. */
  constructor(deps: RegistryDeps) {
    this.#d = deps;
    this.#targets = parseWorkerTargets(deps.workers);
  }

  /** The manager's own Swarm node id. */
  localNodeId(): Promise<string> {
    this.#localNodeId ??= this.#d.swarm.localNodeId().catch((err) => {
      this.#localNodeId = null;
      throw err;
    });
    return this.#localNodeId;
  }

  /**
   * The agent serving `node`, or a string saying why there is none
   * ("no agent" when none is configured).
   */
  async agentFor(
    node: Pick<NodeInfo, "id" | "hostname" | "address">,
  ): Promise<AgentClient | string> {
    const cached = this.#agents.get(node.id);
    if (cached) return cached;
    const target = this.#targets.get(node.hostname) ??
      (this.#d.joined ? workerOfNode(node, this.#d.joined())?.target : undefined);
    let transport: Transport;
    if (target) {
      if (!this.#d.ssh) {
        return "agent unreachable: no SSH key configured (ssh_key_path / SSH_KEY_PATH)";
      }
      transport = this.#d.ssh(target);
    } else if (node.id === await this.localNodeId()) {
      transport = this.#d.local;
    } else {
      return "no agent";
    }
    const agent = new AgentClient(transport);
    this.#agents.set(node.id, agent);
    return agent;
  }

  /** The agent of the node with `nodeId`, or null when it has none. */
  async agentById(nodeId: string): Promise<AgentClient | null> {
    // Node ids never change hands: a known agent needs no node listing.
    const known = this.#agents.get(nodeId);
    if (known) return known;
    const node = (await this.#d.swarm.listNodes()).find((n) => n.id === nodeId);
    if (!node) return null;
    const a = await this.agentFor(node);
    return typeof a === "string" ? null : a;
  }

  /** One node's inventory; never throws (an unreachable agent is a state). */
  async nodeInventory(node: NodeInfo): Promise<NodeInventory> {
    const agent = await this.agentFor(node).catch((e) => `agent unreachable: ${e.message}`);
    if (typeof agent === "string") {
      return { node, agent, access: "none", devices: [], partitions: [] };
    }
    try {
      let known = this.#devices.get(node.id);
      const [inv, partitions] = await Promise.all([
        known ? Promise.resolve(known) : agent.inventory(),
        agent.list(),
      ]);
      if (!known) {
        known = inv;
        this.#devices.set(node.id, inv);
        await this.#label(node, inv.devices);
      }
      const devices = known.devices.map((d) => ({
        index: d.index,
        name: d.name,
        memoryBytes: d.totalMemoryBytes,
        uuid: d.gpu?.uuid ?? "",
        pciBusId: d.gpu?.pciBusId ?? d.pciBusId ?? "",
        vendor: d.gpu?.vendor ?? "",
      }));
      return withPartitions(
        { node, agent: "ok", access: known.access, devices: [], partitions: [] },
        devices,
        partitions,
      );
    } catch (err) {
      // Re-read the devices (and labels) once the agent is back.
      this.#devices.delete(node.id);
      const why = ((err as Error).message ?? String(err)).split("\n")[0];
      return {
        node,
        agent: `agent unreachable: ${why}`,
        access: "none",
        devices: [],
        partitions: [],
      };
    }
  }

  /** Every node's inventory, read in parallel. */
  async inventory(): Promise<NodeInventory[]> {
    const nodes = await this.#d.swarm.listNodes();
    return await Promise.all(nodes.map((n) => this.nodeInventory(n)));
  }

  /** Forgets the agent of `nodeId` (a worker removed or re-joined). */
  forget(nodeId: string): void {
    this.#agents.delete(nodeId);
    this.#devices.delete(nodeId);
  }

  /** Forgets cached device lists so the next inventory re-reads and re-labels them. */
  refreshDevices(): void {
    this.#devices.clear();
  }

  async #label(node: NodeInfo, devices: AgentDevice[]): Promise<void> {
    const labels: Record<string, string> = { "gpu.count": String(devices.length) };
    for (const d of devices) {
      labels[`gpu.${d.index}.name`] = d.name;
      labels[`gpu.${d.index}.memory`] = String(d.totalMemoryBytes);
      if (d.gpu?.uuid) labels[`gpu.${d.index}.uuid`] = d.gpu.uuid;
    }
    try {
      await this.#d.swarm.setNodeLabels(node.id, GPU_LABEL_PREFIX, labels);
      node.labels = { ...node.labels, ...labels };
    } catch (err) {
      this.#d.log(`node ${node.hostname}: could not set GPU labels: ${(err as Error).message}`);
    }
  }
}
