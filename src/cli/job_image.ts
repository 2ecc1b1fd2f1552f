/**
 * The job image for `cumulus up` and `cumulus image`: find a usable one, or
 * make it — pulled from a registry (`--image-from`), loaded from a file
 * (`cumulus image load`), or built from what this copy of Cumulus carries
 * (containers/base/build.sh: debootstrap from the host's Debian mirror;
 * containers/job: the Dockerfile and the `cumulus` Python package), with
 * progress on the way. A built executable carries those files in its payload.
 * @module
 */
import { createReadStream } from "node:fs";
import type Docker from "dockerode";

/** The image jobs run in when nothing else is named. */
export const DEFAULT_JOB_IMAGE = "cumulus-job:latest";

/** The repository of a locally built job image (CUMULUS_JOB_REPO overrides it). */
export const DEFAULT_JOB_REPO = "cumulus-job";

/** Grammar of a registry given to --image-from: host[:port][/path]. */
const REGISTRY_RE = /^[a-z0-9.-]+(:\d{1,5})?(\/[a-z0-9._-]+)*$/i;

/**
 * The image name --image-from pulls: `REGISTRY/cumulus-job:latest`.
 * @throws {Error} when `registry` is not host[:port][/path].
 */
export function registryImage(registry: string): string {
  const r = registry.replace(/\/+$/, "");
  if (!REGISTRY_RE.test(r)) {
    throw new Error(`--image-from: must be a registry host[:port][/path], got ${registry}`);
  }
  return `${r}/${DEFAULT_JOB_REPO}:latest`;
}

/** True when the engine has `image`. */
export async function imageExists(docker: Docker, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch {
    return false;
  }
}

/** Where this copy of Cumulus keeps containers/ (the checkout, or the unpacked payload). */
export function sourceRoot(): string {
  const url = new URL("../../", import.meta.url);
  if (url.protocol !== "file:") {
    throw new Error(`building the job image needs containers/ on disk; this copy runs from ${url}`);
  }
  return url.pathname.replace(/\/$/, "");
}

/**
 * Pulls `image`, printing one line per layer state change.
 * @throws {Error} when the pull fails.
 */
export async function pullImage(
  docker: Docker,
  image: string,
  say: (line: string) => Promise<unknown>,
): Promise<void> {
  await say(`pulling ${image} …`);
  const stream = await docker.pull(image);
  await followProgress(docker, stream, say);
}

/**
 * Loads images from a `docker save` file and returns the names it loaded.
 * @throws {Error} when the file cannot be read or the engine refuses it.
 */
export async function loadImage(
  docker: Docker,
  file: string,
  say: (line: string) => Promise<unknown>,
): Promise<string[]> {
  await Deno.stat(file).catch((err) => {
    throw new Error(`image load: cannot read ${file}: ${(err as Error).message}`);
  });
  await say(`loading ${file} into the Docker engine …`);
  const stream = await docker.loadImage(createReadStream(file) as unknown as NodeJS.ReadableStream);
  const loaded: string[] = [];
  await followProgress(docker, stream, async (line) => {
    const m = /^Loaded image(?: ID)?: (\S+)/.exec(line);
    if (m) loaded.push(m[1]);
    await say(line);
  });
  if (loaded.length === 0) throw new Error(`image load: ${file} held no image`);
  return loaded;
}

async function followProgress(
  docker: Docker,
  stream: NodeJS.ReadableStream,
  say: (line: string) => Promise<unknown>,
): Promise<void> {
  const seen = new Set<string>();
  const pending: Promise<unknown>[] = [];
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => err ? reject(err) : resolve(),
      // deno-lint-ignore no-explicit-any
      (ev: any) => {
        if (ev.error) return;
        const text = String(ev.stream ?? `${ev.id ? `${ev.id}: ` : ""}${ev.status ?? ""}`).trim();
        // Byte-level progress repeats the same status: print each change once.
        if (text && !seen.has(text)) {
          seen.add(text);
          pending.push(say(text));
        }
      },
    );
  });
  await Promise.all(pending);
}

/** What {@link buildJobImage} does. */
export interface BuildOptions {
  /** Repository of the job image; it is tagged `REPO:<content hash>` and `REPO:latest`. */
  repo: string;
  /** Rebuild even when cached. @default false */
  force?: boolean;
  /** Docker engine address for the docker client (DOCKER_HOST form or a socket path). */
  engine: string;
  /** Variables of this process (PATH, proxies, CUMULUS_DEBIAN_MIRROR, …). */
  env: Record<string, string>;
  /** Prints one progress line. */
  say(line: string): Promise<unknown>;
}

/**
 * Builds the base image (when missing) and the job image from this copy's
 * containers/ scripts, streaming their progress lines. Returns `REPO:latest`.
 * @throws {Error} naming the script that failed.
 */
export async function buildJobImage(o: BuildOptions): Promise<string> {
  const root = sourceRoot();
  const dockerHost = o.engine.startsWith("/") ? `unix://${o.engine}` : o.engine;
  // debootstrap lives in sbin, which a user's PATH often lacks.
  const path = (o.env.PATH ?? "/usr/bin:/bin").split(":");
  for (const d of ["/usr/local/sbin", "/usr/sbin", "/sbin"]) if (!path.includes(d)) path.push(d);
  const env = {
    ...o.env,
    PATH: path.join(":"),
    DOCKER_HOST: dockerHost,
    CUMULUS_JOB_REPO: o.repo,
    // The scripts then show debootstrap's phases and each Dockerfile step as they start.
    CUMULUS_BUILD_PROGRESS: "1",
  };
  const steps: [string, string][] = [
    [
      "base image (debootstrap from this machine's Debian mirror; minutes)",
      "containers/base/build.sh",
    ],
    ["job image (Dockerfile + the cumulus Python package)", "containers/job/build.sh"],
  ];
  for (const [what, script] of steps) {
    const t0 = Date.now();
    await o.say(`building the ${what}: bash ${script}${o.force ? " --force" : ""}`);
    const child = new Deno.Command("bash", {
      args: [`${root}/${script}`, ...(o.force && script.includes("job") ? ["--force"] : [])],
      cwd: root,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const relay = async (s: ReadableStream<Uint8Array>) => {
      let rest = "";
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop() ?? "";
        for (const l of lines) if (l.trim()) await o.say(`  ${l.trim()}`);
      }
      if (rest.trim()) await o.say(`  ${rest.trim()}`);
    };
    const [status] = await Promise.all([child.status, relay(child.stdout), relay(child.stderr)]);
    if (!status.success) {
      throw new Error(`building the ${what} failed: bash ${script} exited ${status.code}`);
    }
    await o.say(`${script} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  return `${o.repo}:latest`;
}

/**
 * The Docker engine `up` and `image` talk to: SWARM_MANAGER, else
 * /run/cumulus-docker.sock when present (the checkout's bootstrap), else
 * /var/run/docker.sock.
 */
export function dockerEngineAddress(env: (name: string) => string | undefined): string {
  const set = env("SWARM_MANAGER")?.trim();
  if (set) return set;
  for (const sock of ["/run/cumulus-docker.sock", "/var/run/docker.sock"]) {
    try {
      Deno.statSync(sock);
      return sock;
    } catch {
      // Try the next one.
    }
  }
  return "/var/run/docker.sock";
}
