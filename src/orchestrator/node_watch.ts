/**
 * Which Swarm nodes are unreachable, and since when. Swarm marks a node
 * `down` when its heartbeats stop (machine off, engine killed, network cut)
 * but keeps the last state its tasks reported ("running"), so a job there
 * would wait for its deadline. The watch reads Swarm's node list at most
 * every few seconds, while attempts ask (see {@link NodeWatch.lost}), and
 * remembers since when each node has been down; the node-down attempt hook
 * ends an attempt whose node stayed down longer than config
 * `node_down_grace`. The "down for how long" logic is the pure
 * {@link nextDownMarks} and {@link downForMs}.
 * @module
 */
import type { NodeInfo } from "../swarm/mod.ts";

/** A node seen down: its hostname and the time it was first seen so. */
export interface DownMark {
  hostname: string;
  /** When a node list first showed it down (ms since the epoch). */
  sinceMs: number;
}

/** A node down for longer than the grace period. */
export interface LostNode {
  hostname: string;
  /** How long it has been seen down (ms). */
  downMs: number;
}

/**
 * The down marks after a node list read at `nowMs`: a node still down keeps
 * the time it was first seen down, a newly down one starts at `nowMs`, a node
 * that is back (or gone from the list) has none.
 */
export function nextDownMarks(
  prev: ReadonlyMap<string, DownMark>,
  nodes: readonly NodeInfo[],
  nowMs: number,
): Map<string, DownMark> {
  const next = new Map<string, DownMark>();
  for (const n of nodes) {
    if (n.state !== "down") continue;
    next.set(n.id, { hostname: n.hostname || n.id, sinceMs: prev.get(n.id)?.sinceMs ?? nowMs });
  }
  return next;
}

/**
 * How long the node of `mark` is known to have been down: up to the last
 * node list read (`lastReadMs`), never beyond it, so a manager that stopped
 * answering makes no node look down for longer.
 */
export function downForMs(mark: DownMark, lastReadMs: number): number {
  return Math.max(0, lastReadMs - mark.sinceMs);
}

/** Options of {@link NodeWatch}. */
export interface NodeWatchOptions {
  /** Swarm's node list (SwarmClient.listNodes). */
  listNodes: () => Promise<NodeInfo[]>;
  /** How long a node may stay down before its attempts end (ms, > 0). */
  graceMs: number;
  /** Least time between two node list reads (ms). @default 2000 */
  intervalMs?: number;
  now: () => number;
  log: (msg: string) => void;
}

/** See the module doc. */
export class NodeWatch {
  #o: NodeWatchOptions;
  #marks = new Map<string, DownMark>();
  /** Time of the last successful node list read (-Infinity: none yet). */
  #lastReadMs = -Infinity;
  /** Time of the last read started. */
  #lastTryMs = -Infinity;
  #reading: Promise<void> | null = null;

  /** Creates the watch; it reads nothing until asked. */
  constructor(opts: NodeWatchOptions) {
    this.#o = opts;
  }

  /** The grace period (ms). */
  get graceMs(): number {
    return this.#o.graceMs;
  }

  /**
   * The node `nodeId` when it has been down longer than the grace period,
   * else null. Synchronous (attempt hooks' `tick`): answers from the last
   * read and starts a new one when that is older than the interval.
   */
  lost(nodeId: string): LostNode | null {
    this.#refreshIfStale();
    const mark = this.#marks.get(nodeId);
    if (!mark) return null;
    const downMs = downForMs(mark, this.#lastReadMs);
    return downMs > this.#o.graceMs ? { hostname: mark.hostname, downMs } : null;
  }

  /** Reads the node list now (one read at a time; a failed read changes nothing). */
  refresh(): Promise<void> {
    if (this.#reading) return this.#reading;
    this.#lastTryMs = this.#o.now();
    this.#reading = (async () => {
      try {
        const nodes = await this.#o.listNodes();
        const now = this.#o.now();
        const next = nextDownMarks(this.#marks, nodes, now);
        for (const [id, m] of next) {
          if (!this.#marks.has(id)) this.#o.log(`node ${m.hostname} (${id}) is down (Swarm)`);
        }
        for (const [id, m] of this.#marks) {
          if (!next.has(id)) this.#o.log(`node ${m.hostname} (${id}) is no longer down`);
        }
        this.#marks = next;
        this.#lastReadMs = now;
      } catch (err) {
        this.#o.log(`node watch: node list failed: ${(err as Error).message}`);
      } finally {
        this.#reading = null;
      }
    })();
    return this.#reading;
  }

  #refreshIfStale(): void {
    if (this.#o.now() - this.#lastTryMs >= (this.#o.intervalMs ?? 2000)) void this.refresh();
  }
}
