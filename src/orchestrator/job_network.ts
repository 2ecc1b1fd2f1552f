/**
 * The network jobs join (config `job_network`), kept usable across Docker
 * engine restarts.
 *
 * Jobs run on a Swarm-scoped bridge of their own (a bridge local to each
 * node, containers unable to reach each other). Docker 20.10 (and later, as
 * of moby/moby#37087 and #38318, both open) keeps a stale copy of such a
 * network on a node whose engine restarted, and then rejects every new task
 * on it there with "network <id> exists" until the network is made again.
 * So the orchestrator makes it again: a new generation (`cumulus-jobs`,
 * `cumulus-jobs-1`, …, labelled with the config name and the generation),
 * which new attempts join, while older generations are removed once no
 * service uses them. Orchestrators sharing one Swarm and config name adopt
 * the newest generation any of them made.
 * @module
 */
import { UnavailableError } from "../core/mod.ts";
import type { JobNetworkInfo, SwarmClient } from "../swarm/mod.ts";

/** What {@link JobNetwork} needs from Docker. */
export type JobNetworkSwarm = Pick<
  SwarmClient,
  "listJobNetworks" | "createJobNetwork" | "removeNetwork"
>;

/**
 * The network id in a task error that says a node holds a stale copy of it
 * ("network 3k8my05edtrtdgqm9i8igojte exists"), or null for any other error.
 */
export function staleNetworkId(taskErr: string): string | null {
  const m = /\bnetwork ([0-9a-z]{12,64}) exists\b/.exec(taskErr);
  return m ? m[1] : null;
}

/** The name of generation `gen` of config name `base`: `base` itself, then `base-1`, … */
export function generationName(base: string, gen: number): string {
  return gen === 0 ? base : `${base}-${gen}`;
}

/** The generation new attempts join: the highest (the first listed on a tie), or null. */
export function newestNetwork(nets: readonly JobNetworkInfo[]): JobNetworkInfo | null {
  let best: JobNetworkInfo | null = null;
  for (const n of nets) if (!best || n.generation > best.generation) best = n;
  return best;
}

/** Whether `id` (a full id or a prefix of one, as Docker prints them) names `net`. */
export function sameNetwork(net: JobNetworkInfo, id: string): boolean {
  return id.length > 0 && (net.id === id || net.id.startsWith(id) || id.startsWith(net.id));
}

/** See the module doc. */
export class JobNetwork {
  #swarm: JobNetworkSwarm;
  #base: string;
  #log: (msg: string) => void;
  #current: JobNetworkInfo | null = null;
  /** One renewal or refresh at a time: a Docker restart rejects many tasks at once. */
  #chain: Promise<unknown> = Promise.resolve();
  /** Older generations may be left to remove. */
  #old = false;

  /**
   * @param swarm Docker access
   * @param base config `job_network` (not "host")
   * @param log diagnostic log
   */
  constructor(swarm: JobNetworkSwarm, base: string, log: (msg: string) => void) {
    this.#swarm = swarm;
    this.#base = base;
    this.#log = log;
  }

  /** The network new attempts join (the config name until {@link init} ran). */
  get name(): string {
    return this.#current?.name ?? this.#base;
  }

  /**
   * Adopts the newest generation, or makes the first; resolves true when it
   * made one. A network of the config name that is not Swarm-scoped cannot
   * carry services: UnavailableError naming it.
   */
  init(): Promise<boolean> {
    return this.#serial(() => this.#adoptOrCreate(null));
  }

  /** Adopts the newest generation again (another orchestrator may have made or removed one). */
  refresh(): Promise<boolean> {
    return this.#serial(() => this.#adoptOrCreate(null));
  }

  /**
   * A task was rejected because a node holds a stale copy of network `staleId`.
   * When that is one of ours, new attempts get a network without that copy (a
   * newer generation someone made meanwhile, or a new one) and this resolves
   * true; for a network that is not ours, false (nothing to renew).
   */
  renew(staleId: string): Promise<boolean> {
    return this.#serial(async () => {
      const nets = await this.#list();
      const stale = nets.find((n) => sameNetwork(n, staleId)) ??
        (this.#current && sameNetwork(this.#current, staleId) ? this.#current : null);
      if (!stale) return false;
      const newest = newestNetwork(nets);
      if (newest && !sameNetwork(newest, staleId)) {
        this.#adopt(newest);
      } else {
        await this.#adoptOrCreate(stale.generation + 1);
      }
      this.#old = true;
      this.#log(
        `network ${stale.name} is stale on a node whose Docker engine restarted ` +
          `(moby/moby#37087): new attempts join ${this.name}`,
      );
      return true;
    });
  }

  /**
   * Removes older generations that no service uses any more (Docker refuses
   * the others; they are tried again on a later sweep). Returns how many went.
   */
  async sweep(): Promise<number> {
    if (!this.#old) return 0;
    const nets = await this.#list();
    const keep = newestNetwork(nets);
    let removed = 0;
    let left = 0;
    for (const n of nets) {
      if (n.id === keep?.id || n.id === this.#current?.id) continue;
      if (await this.#swarm.removeNetwork(n.id)) {
        removed++;
        this.#log(`removed network ${n.name}, an older generation of ${this.#base}`);
      } else left++;
    }
    this.#old = left > 0;
    return removed;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => {});
    return run;
  }

  async #list(): Promise<JobNetworkInfo[]> {
    return await this.#swarm.listJobNetworks(this.#base);
  }

  #adopt(net: JobNetworkInfo): void {
    if (net.scope !== "swarm") {
      throw new UnavailableError(
        `network ${net.name} is ${net.scope || "not"}-scoped: jobs need a Swarm-scoped one ` +
          `(docker network rm ${net.name}, and the orchestrator makes it), or config ` +
          "job_network: host",
      );
    }
    this.#current = net;
  }

  /**
   * Adopts the newest generation, or (none, or `atLeast` set and the newest
   * older than it) makes one: generation `atLeast`, or the next free name.
   * Resolves true when it made one.
   */
  async #adoptOrCreate(atLeast: number | null): Promise<boolean> {
    for (let tries = 0; tries < 8; tries++) {
      const nets = await this.#list();
      const newest = newestNetwork(nets);
      if (newest && (atLeast === null || newest.generation >= atLeast)) {
        this.#adopt(newest);
        if (nets.length > 1) this.#old = true;
        return false;
      }
      const gen = (atLeast ?? 0) + tries;
      const name = generationName(this.#base, gen);
      const id = await this.#swarm.createJobNetwork(name, this.#base, gen);
      if (id !== null) {
        this.#current = { id, name, scope: "swarm", generation: gen };
        if (nets.length > 0) this.#old = true;
        return true;
      }
      // The name is taken: another orchestrator made it (adopted on the next turn), or a
      // network that is not ours has it (the next generation's name is tried).
    }
    throw new UnavailableError(
      `could not make a network for jobs named ${this.#base} or ${this.#base}-N: ` +
        "the names are taken by networks the orchestrator did not make",
    );
  }
}
