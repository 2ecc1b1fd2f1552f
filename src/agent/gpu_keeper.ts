/**
 * The agent daemon's GPU housekeeping (`cumulus-agent serve`): removes grants whose partition is
 * gone (released, expired or reaped by anyone), restarts a GPU's MPS daemon that died while the
 * GPU has fractional partitions, and stops one whose GPU has had none for a while. Like the
 * expiry daemon it keeps no state that matters: grant files and Chronos's state are the truth,
 * and the only memory (since when a GPU is idle) merely delays a stop after a restart.
 * @module
 */
import { pause } from "../core/mod.ts";
import type { PartitionList } from "./chronos.ts";
import { listGrantIds, removeGrant, staleGrants } from "./grants.ts";
import { MPS_ACTION, MPS_IDLE_STOP_MS, type MpsControl, type MpsGpu, planMps } from "./mps.ts";

/** Settings of {@link GpuKeeper}. */
export interface GpuKeeperOptions {
  /** Directory of grant files. */
  grantsDir: string;
  /** GPUs whose fractional partitions MPS enforces (empty without MPS). */
  gpus: MpsGpu[];
  /** The MPS executor; null without MPS. */
  mps: Pick<MpsControl, "alive" | "ensure" | "stop"> | null;
  /** Pause between two looks, ms. */
  intervalMs: number;
  /**
   * How long a GPU keeps its MPS daemon after its last fractional partition.
   * @default {30000}
   */
  idleStopMs?: number;
  /** Writes one log line. */
  log(line: string): void;
}

/**
 * Keeps grant files and MPS daemons in line with the live partitions. {@link GpuKeeper.tick}
 * does one pass; {@link GpuKeeper.run} loops until its signal aborts.
 * @example
 * const keeper = new GpuKeeper(chronos, { grantsDir, gpus, mps, intervalMs: 1000, log });
 * await keeper.run(controller.signal);
 */
export class GpuKeeper {
  #store: { list(): Promise<PartitionList> };
  #o: GpuKeeperOptions;
  #idleSince = new Map<string, number | null>();

  /** Creates the keeper over the partitions' store (a Chronos handle). */
  constructor(store: { list(): Promise<PartitionList> }, opts: GpuKeeperOptions) {
    this.#store = store;
    this.#o = opts;
  }

  /** One pass: stale grants, then MPS daemons. Failures of single actions are logged. */
  async tick(): Promise<void> {
    const { grantsDir, gpus, mps, log } = this.#o;
    // Grants first, partitions second: see staleGrants.
    const grants = await listGrantIds(grantsDir);
    const { nowMs, partitions } = await this.#store.list();
    for (const id of staleGrants(grants, partitions.map((p) => p.id))) {
      try {
        if (await removeGrant(grantsDir, id)) log(`removed the grant of ${id}: partition gone`);
      } catch (err) {
        log((err as Error).message);
      }
    }
    if (mps === null || gpus.length === 0) return;
    const daemons = await Promise.all(gpus.map(async (g) => ({
      uuid: g.uuid,
      alive: await mps.alive(g.uuid),
      idleSinceMs: this.#idleSince.get(g.uuid) ?? null,
    })));
    const plan = planMps(gpus, partitions, daemons, nowMs, this.#o.idleStopMs ?? MPS_IDLE_STOP_MS);
    this.#idleSince = plan.idleSinceMs;
    for (const a of plan.actions) {
      try {
        switch (a.kind) {
          case MPS_ACTION.start:
            if (await mps.ensure(a.uuid) === "started") {
              log(`mps: started the control daemon of ${a.uuid} (it has fractional partitions)`);
            }
            break;
          case MPS_ACTION.stop:
            await mps.stop(a.uuid);
            log(`mps: stopped the control daemon of ${a.uuid} (idle ${Math.round(a.idleMs)} ms)`);
            break;
          default: {
            const never: never = a;
            throw new Error(`unknown mps action ${JSON.stringify(never)}`);
          }
        }
      } catch (err) {
        log((err as Error).message);
      }
    }
  }

  /** Looks every `intervalMs` until `signal` aborts; a failing look is logged, never fatal. */
  async run(signal: AbortSignal): Promise<void> {
    let lastError = "";
    while (!signal.aborted) {
      try {
        await this.tick();
        lastError = "";
      } catch (err) {
        const message = (err as Error).message;
        if (message !== lastError) this.#o.log(`gpu housekeeping failed: ${message}`);
        lastError = message;
      }
      await pause(this.#o.intervalMs, signal);
    }
  }
}
