/**
 * Pushing an image of the manager's engine to a registry (tag, then push,
 * following the engine's progress stream), and asking a registry, through the
 * engine, whether it holds an image. The engine trusts a registry by its own
 * settings: TLS with a CA in /etc/docker/certs.d/<host:port>/ca.crt (read at
 * each request, no restart), or `insecure-registries` (127.0.0.0/8 always is).
 * @module
 */
import type Docker from "dockerode";
import { NotFoundError, UnavailableError } from "../core/mod.ts";
import { JsonLineSplitter } from "./events.ts";
import type { RegistryAuth } from "./registry_auth.ts";

/** Progress of a push, summed over the image's layers. */
export interface PushProgress {
  /** Bytes sent so far (layers the registry had already count as done). */
  bytesDone: number;
  /** Bytes of the layers whose size the engine has announced. */
  bytesTotal: number;
  /** Layers pushed or found in the registry already. */
  layersDone: number;
  /** Layers the engine reported. */
  layers: number;
}

/** Options of {@link pushImage}. */
export interface PushOptions {
  /** Credentials for the target registry (absent: none). */
  auth?: RegistryAuth;
  /** Called on every progress message of the engine. */
  onProgress?: (p: PushProgress) => void;
  /** Aborts the push. */
  signal?: AbortSignal;
}

/** One message of the engine's push stream (only the fields read here). */
interface PushMessage {
  status?: string;
  id?: string;
  error?: string;
  progressDetail?: { current?: number; total?: number };
  aux?: { Digest?: string };
}

/**
 * Sums a push stream's messages into {@link PushProgress} and finds the
 * pushed manifest's digest. Pure: fed one message at a time.
 */
export class PushTracker {
  #layers = new Map<string, { done: number; total: number; finished: boolean }>();
  /** The manifest digest, once the engine has said it. */
  digest = "";

  /** Takes one message; returns an engine error's text, if it is one. */
  push(msg: PushMessage): string | null {
    if (msg.error) return msg.error;
    if (msg.aux?.Digest) this.digest = msg.aux.Digest;
    const id = msg.id ?? "";
    const status = msg.status ?? "";
    if (!id || !/^[0-9a-f]{12}$/.test(id)) return null;
    const layer = this.#layers.get(id) ?? { done: 0, total: 0, finished: false };
    this.#layers.set(id, layer);
    if (status === "Pushing") {
      layer.done = msg.progressDetail?.current ?? layer.done;
      layer.total = msg.progressDetail?.total ?? layer.total;
    } else if (
      status === "Pushed" || status === "Layer already exists" || status.startsWith("Mounted")
    ) {
      layer.finished = true;
      layer.done = layer.total;
    }
    return null;
  }

  /** The sums so far. */
  get progress(): PushProgress {
    let bytesDone = 0, bytesTotal = 0, layersDone = 0;
    for (const l of this.#layers.values()) {
      bytesDone += l.done;
      bytesTotal += l.total;
      if (l.finished) layersDone++;
    }
    return { bytesDone, bytesTotal, layersDone, layers: this.#layers.size };
  }
}

function statusCode(err: unknown): number {
  return (err as { statusCode?: number })?.statusCode ?? 0;
}

function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split("\n")[0];
}

/**
 * Tags local image `imageId` as `repo:tag` (repo including the registry host)
 * and pushes it; resolves with the manifest digest the registry stored.
 * @throws {UnavailableError} when the engine or the registry refuses (message
 *   names the target, never credentials)
 */
export async function pushImage(
  docker: Docker,
  imageId: string,
  target: { repo: string; tag: string },
  opts: PushOptions = {},
): Promise<string> {
  const ref = `${target.repo}:${target.tag}`;
  try {
    await docker.getImage(imageId).tag({ repo: target.repo, tag: target.tag });
  } catch (err) {
    throw new UnavailableError(`docker tag ${ref} failed: ${firstLine(err)}`, { cause: err });
  }
  let stream: NodeJS.ReadableStream & { destroy?: () => void };
  try {
    // An empty auth object still sends X-Registry-Auth, which Docker 20.10's push requires.
    stream = await docker.getImage(ref).push({
      authconfig: opts.auth ?? {},
      ...(opts.signal ? { abortSignal: opts.signal } : {}),
      // deno-lint-ignore no-explicit-any
    } as any) as any;
  } catch (err) {
    throw new UnavailableError(`docker push ${ref} failed: ${firstLine(err)}`, { cause: err });
  }
  const tracker = new PushTracker();
  const split = new JsonLineSplitter();
  const onAbort = () => stream.destroy?.();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of stream as AsyncIterable<Uint8Array>) {
      for (const raw of split.push(chunk)) {
        const error = tracker.push(raw as PushMessage);
        if (error) throw new UnavailableError(`docker push ${ref} failed: ${error}`);
        opts.onProgress?.(tracker.progress);
      }
    }
  } catch (err) {
    if (err instanceof UnavailableError) throw err;
    throw new UnavailableError(`docker push ${ref} failed: ${firstLine(err)}`, { cause: err });
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    stream.destroy?.();
  }
  if (!tracker.digest) {
    throw new UnavailableError(`docker push ${ref} failed: the engine reported no digest`);
  }
  return tracker.digest;
}

/**
 * The manifest digest a registry holds for `ref`, asked through the engine
 * (its trust settings and `auth`).
 * @throws {NotFoundError} when the registry has no such image (or refuses to say)
 * @throws {UnavailableError} when the registry cannot be reached
 */
export async function registryDigest(
  docker: Docker,
  ref: string,
  auth?: RegistryAuth,
): Promise<string> {
  try {
    const info = await docker.getImage(ref).distribution({ authconfig: auth ?? {} });
    return String((info as { Descriptor?: { digest?: string } })?.Descriptor?.digest ?? "");
  } catch (err) {
    const code = statusCode(err);
    const msg = firstLine(err);
    if (code === 401 || code === 403 || code === 404 || /manifest unknown|not found/i.test(msg)) {
      throw new NotFoundError(`image ${ref} is not in its registry: ${msg}`);
    }
    throw new UnavailableError(`registry lookup of ${ref} failed: ${msg}`, { cause: err });
  }
}
