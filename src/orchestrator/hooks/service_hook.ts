/**
 * Attempt hook: the job's Swarm service. Created (or found again after a
 * crash) before anything runs, with the attempt marker in the log for a
 * resumed job; stopped and removed once the attempt's end is recorded.
 * @module
 */
import { CumulusError, pause, REASON_CODES } from "../../core/mod.ts";
import type { LastLine } from "../../logs/mod.ts";
import { ATTEMPT_MARKER, type AttemptHook } from "../attempt.ts";
import { finalState } from "../attempt_end.ts";
import { NetworkGoneError } from "../../swarm/mod.ts";
import { buildServiceRequest, DEFAULT_JOB_ISOLATION, serviceName } from "../service_spec.ts";

function isMarker(line: LastLine | null): boolean {
  return line !== null && line.origin.kind === "marker" && line.text.startsWith(ATTEMPT_MARKER);
}

/** See the module doc. */
export function serviceHook(): AttemptHook {
  return {
    name: "service",
    async prepare(a) {
      if (a.serviceId) return "next";
      const d = a.deps;
      const job = a.job;
      try {
        const existing = await d.swarm.findService(serviceName(job.id));
        if (existing) a.serviceId = existing.id;
        else if (a.imageId) {
          // With a registry: the image as every node can pull it (pushed once per image id).
          const image = d.images
            ? await d.images.serviceImage(job.spec.image, a.imageId)
            : a.imageId;
          const request = () => {
            const iso = d.isolation ?? DEFAULT_JOB_ISOLATION;
            return buildServiceRequest(job, {
              imageId: image,
              orchestratorAddress: d.orchestratorAddress,
              orchestratorCaPem: d.orchestratorCaPem,
              instanceId: d.instanceId,
              stopGracePeriodS: d.stopGracePeriodS,
              now: d.now(),
              s3: d.s3,
              // The jobs' network as of now: a generation made after a node's copy went stale.
              isolation: d.network && iso.network !== "host"
                ? { ...iso, network: d.network.name }
                : iso,
            });
          };
          if (job.attempts > 1 && !isMarker(a.log.last)) {
            a.log.append({
              stream: "stderr",
              origin: { kind: "marker" },
              timeMs: d.now(),
              text: `${ATTEMPT_MARKER}${job.attempts} of ${job.spec.maxAttempts} starts`,
            });
          }
          const auth = d.images?.authFor(image);
          const create = () => {
            const req = request();
            return d.swarm.createService(auth ? { ...req, registryAuth: auth } : req);
          };
          try {
            a.serviceId = await create();
          } catch (err) {
            // Another orchestrator on this Swarm removed the generation we knew (it had
            // made a newer one): take the newest and create once more.
            if (!(err instanceof NetworkGoneError) || !d.network) throw err;
            await d.network.refresh();
            a.serviceId = await create();
          }
          a.attemptStartSeq = a.log.lastSeq;
        } else {
          throw new CumulusError("FAILED_PRECONDITION", `image ${job.spec.image} not found`);
        }
        a.job = d.store.update(job.id, { serviceId: a.serviceId });
        return "next";
      } catch (err) {
        if (a.signal.aborted) return "end";
        const msg = err instanceof CumulusError ? err.message : String(err);
        a.setFinal(
          finalState({
            state: "FAILED",
            exitCode: null,
            reason: `could not start: ${msg}`,
            reasonCode: REASON_CODES.START_FAILED,
          }, ""),
        );
        a.log.markComplete();
        return "stop";
      }
    },
    async cleanup(a) {
      const d = a.deps;
      // A cancelled job's container is stopped directly too (when it runs on the
      // manager's engine): Swarm takes ~3 s to stop a removed service's task.
      // Waited for at most 1 s; a job that ignores SIGTERM is killed after the grace period.
      const stopping = (a.cancelled || a.expiredByUs) && a.containerId
        ? d.swarm.stopContainer(a.containerId, d.stopGracePeriodS).catch((err) => {
          d.log(`job ${a.jobId}: container stop failed: ${(err as Error).message}`);
          return false;
        })
        : Promise.resolve(false);
      if (a.serviceId) {
        try {
          await d.swarm.removeService(a.serviceId);
        } catch (err) {
          d.log(`job ${a.jobId}: service remove failed: ${(err as Error).message}`);
        }
      }
      await Promise.race([stopping, pause(1000)]);
    },
  };
}
