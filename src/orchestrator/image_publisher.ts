/**
 * How a job's image reaches the node Swarm puts it on, when config `registry`
 * names a registry: an image found on the manager under a short name
 * (`cumulus-job:latest`) is pushed there once per image id, and the service
 * references it as `REGISTRY/cumulus-job@sha256:DIGEST`, so a node without it
 * pulls it on first use. A reference naming a registry host
 * (`ghcr.io/org/img:tag`) is passed through unchanged once that registry
 * confirms it holds the image. Credentials come from the orchestrator's config.
 * @module
 */
import type Docker from "dockerode";
import {
  FailedPreconditionError,
  formatBytes,
  NotFoundError,
  pinnedRef,
  registryOf,
} from "../core/mod.ts";
import { pushImage, type PushProgress, type RegistryAuth, registryDigest } from "../swarm/mod.ts";

/** Repository the orchestrator pushes job images to, in its registry. */
export const PUBLISHED_REPO = "cumulus-job";
/** Least time between two progress lines of one push. */
const PROGRESS_EVERY_MS = 2000;

/** What {@link ImagePublisher} needs. */
export interface PublisherDeps {
  /** The manager's engine (pushes and registry lookups go through it). */
  docker: Docker;
  /** `host:port` of the registry every node pulls from (config `registry`). */
  registry: string;
  /** Credentials per registry host (config `registry_auth_file`). */
  auths: ReadonlyMap<string, RegistryAuth>;
  /** Diagnostic log (never given credentials). */
  log: (msg: string) => void;
  now?: () => number;
}

/** Publishes job images to the registry; one per orchestrator. */
export class ImagePublisher {
  #d: PublisherDeps;
  /** Pushes done or under way, by image id (a failed push is forgotten, so it is tried again). */
  #pushes = new Map<string, Promise<string>>();

  /** Creates the publisher. */
  constructor(deps: PublisherDeps) {
    this.#d = deps;
  }

  /** The registry the orchestrator pushes to. */
  get registry(): string {
    return this.#d.registry;
  }

  /**
   * Whether `ref` is used as it is (it names a registry host, which nodes pull
   * from): the manager need not hold it.
   */
  passesThrough(ref: string): boolean {
    return registryOf(ref) !== null;
  }

  /** Credentials for the registry `ref` names (the service's registry auth), if configured. */
  authFor(ref: string): RegistryAuth | undefined {
    const host = registryOf(ref);
    return host === null ? undefined : this.#d.auths.get(host);
  }

  /**
   * The image reference a job's service uses.
   * @param ref the job spec's image
   * @param imageId the manager's id for it (for a pass-through reference, `ref` itself)
   * @throws {FailedPreconditionError} when a pass-through image is not in its registry
   * @throws {UnavailableError} when a push or a registry lookup fails
   */
  async serviceImage(ref: string, imageId: string): Promise<string> {
    if (this.passesThrough(ref)) {
      try {
        await registryDigest(this.#d.docker, ref, this.authFor(ref));
      } catch (err) {
        if (err instanceof NotFoundError) {
          throw new FailedPreconditionError(
            `image ${ref} not found in registry ${registryOf(ref)}`,
          );
        }
        throw err;
      }
      return ref;
    }
    let push = this.#pushes.get(imageId);
    if (!push) {
      push = this.#push(imageId);
      this.#pushes.set(imageId, push);
      push.catch(() => this.#pushes.delete(imageId));
    }
    return await push;
  }

  async #push(imageId: string): Promise<string> {
    const d = this.#d;
    const now = d.now ?? Date.now;
    const repo = `${d.registry}/${PUBLISHED_REPO}`;
    const tag = imageId.replace(/^sha256:/, "");
    const short = tag.slice(0, 12);
    const started = now();
    let lastLog = -Infinity;
    const say = (p: PushProgress, word: string) =>
      d.log(
        `image ${short}: ${word} ${d.registry}: ${formatBytes(p.bytesDone)} of ` +
          `${formatBytes(p.bytesTotal)}, ${p.layersDone}/${p.layers} layers`,
      );
    let last: PushProgress = { bytesDone: 0, bytesTotal: 0, layersDone: 0, layers: 0 };
    d.log(`image ${short}: pushing to ${d.registry}`);
    const digest = await pushImage(d.docker, imageId, { repo, tag }, {
      auth: d.auths.get(d.registry),
      onProgress: (p) => {
        last = p;
        if (now() - lastLog < PROGRESS_EVERY_MS) return;
        lastLog = now();
        say(p, "pushing to");
      },
    });
    say(last, `pushed in ${((now() - started) / 1000).toFixed(1)} s to`);
    return pinnedRef(d.registry, PUBLISHED_REPO, digest);
  }
}
