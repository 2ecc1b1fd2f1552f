/**
 * `cumulus-agent serve [--grace S] [--interval MS]`: runs the {@link ExpiryDaemon} against this
 * host's Chronos state and Docker engine (DOCKER_HOST, default /var/run/docker.sock), and the
 * {@link GpuKeeper} (stale grants, MPS daemons), until SIGTERM or SIGINT, then exits 0. Loaded
 * only by that command, so the short commands the orchestrator runs over SSH never load
 * dockerode.
 * @module
 */
import type Docker from "dockerode";
import { connectDocker } from "../swarm/mod.ts";
import { Chronos, type ChronosOptions } from "./chronos.ts";
import { ExpiryDaemon, type JobContainers } from "./daemon.ts";
import { GpuKeeper } from "./gpu_keeper.ts";
import { type GpuSession, mpsGpus } from "./gpu_layer.ts";

/** Docker label that names a container's job (set by the orchestrator's service spec). */
export const JOB_LABEL = "cumulus.job";

/** Settings of {@link serve}. */
export interface ServeOptions {
  /** Seconds between SIGTERM and SIGKILL (default 10). */
  graceS: number;
  /** Longest pause between two looks at the partitions, ms (default 500). */
  intervalMs: number;
  /** How to open Chronos. */
  chronos: ChronosOptions;
  /** Docker engine address (DOCKER_HOST syntax). */
  dockerHost: string;
  /** The GPU layer (grants directory, MPS); its settings are checked before anything starts. */
  gpu: GpuSession;
  /**
   * Pause between two GPU housekeeping passes, ms.
   * @default {1000}
   */
  gpuIntervalMs?: number;
  /** Writes one line. */
  log(line: string): void;
}

function statusCode(err: unknown): number | undefined {
  return (err as { statusCode?: number })?.statusCode;
}

/** Stops a job's containers on one Docker engine, found by their `cumulus.job` label. */
export function dockerJobContainers(docker: Docker): JobContainers {
  return {
    async stopJob(jobId, graceS) {
      const found = await docker.listContainers({
        filters: { label: [`${JOB_LABEL}=${jobId}`], status: ["running"] },
      });
      const stopped = await Promise.all(found.map(async (c) => {
        try {
          // dockerd sends SIGTERM, waits t seconds, then SIGKILL; it finishes the stop even if
          // this process dies meanwhile.
          await docker.getContainer(c.Id).stop({ t: Math.ceil(graceS) });
          return c.Id.slice(0, 12);
        } catch (err) {
          const code = statusCode(err);
          if (code === 304 || code === 404) return null;
          throw err;
        }
      }));
      return stopped.filter((id): id is string => id !== null);
    },
  };
}

/** Runs the daemon until SIGTERM/SIGINT; resolves with exit code 0. */
export async function serve(opts: ServeOptions): Promise<number> {
  opts.gpu.settings(); // malformed GPU settings fail here, before anything runs
  const chronos = Chronos.open(opts.chronos);
  const docker = connectDocker(opts.dockerHost);
  const controller = new AbortController();
  const stop = () => controller.abort();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  const daemon = new ExpiryDaemon(chronos, dockerJobContainers(docker), {
    graceS: opts.graceS,
    intervalMs: opts.intervalMs,
    log: opts.log,
  });
  opts.log(
    `cumulus-agent serve: pid ${Deno.pid}, grace ${opts.graceS} s, interval ` +
      `${opts.intervalMs} ms, docker ${opts.dockerHost}`,
  );
  try {
    const view = await opts.gpu.view(() => chronos.devices());
    const gpus = mpsGpus(view);
    opts.log(
      `gpus: access ${view.access}, ${view.mapped.size} device(s) with a GPU, grants in ` +
        `${view.settings.grantsDir}, ${
          view.mps === null ? "no MPS" : `MPS for ${gpus.length} GPU(s) in ${view.settings.mpsDir}`
        }`,
    );
    const keeper = new GpuKeeper(chronos, {
      grantsDir: view.settings.grantsDir,
      gpus,
      mps: view.mps,
      intervalMs: opts.gpuIntervalMs ?? 1_000,
      log: opts.log,
    });
    await Promise.all([daemon.run(controller.signal), keeper.run(controller.signal)]);
  } finally {
    Deno.removeSignalListener("SIGTERM", stop);
    Deno.removeSignalListener("SIGINT", stop);
    chronos.close();
  }
  opts.log(
    `cumulus-agent serve: stopping (${daemon.pending} expiry(ies) still in dockerd's hands)`,
  );
  return 0;
}
