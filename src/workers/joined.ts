/**
 * Which Swarm node a joined worker is. A worker joins under a name (by
 * default its hostname) and an SSH target; its node is the one whose
 * hostname is that name, else the one whose address is the target's host
 * (machines that share a hostname, such as network namespaces of one host,
 * still differ by address).
 * @module
 */
import type { NodeInfo } from "../swarm/mod.ts";
import type { SshTarget } from "./registry.ts";

/** A joined worker as the registry sees it. */
export interface JoinedWorker {
  name: string;
  target: SshTarget;
}

/**
 * The node of `worker` among `nodes`, or null. A unique hostname match
 * wins; otherwise the address decides. Down nodes count only when no node
 * that is up matches (a re-joined machine leaves its old node down).
 */
export function nodeOfWorker(
  worker: JoinedWorker,
  nodes: readonly NodeInfo[],
): NodeInfo | null {
  const pick = (list: readonly NodeInfo[]): NodeInfo | null => {
    const byName = list.filter((n) => n.hostname === worker.name);
    if (byName.length === 1) return byName[0];
    const byAddr = list.filter((n) => n.address === worker.target.host);
    if (byAddr.length >= 1) return byAddr[0];
    return null;
  };
  return pick(nodes.filter((n) => n.state !== "down")) ?? pick(nodes);
}

/**
 * The joined worker serving `node`, or null: the one named like its
 * hostname, else the one whose SSH host is its address.
 */
export function workerOfNode(
  node: Pick<NodeInfo, "hostname" | "address">,
  workers: readonly JoinedWorker[],
): JoinedWorker | null {
  return workers.find((w) => w.name === node.hostname) ??
    workers.find((w) => w.target.host === node.address) ?? null;
}
