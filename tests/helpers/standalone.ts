/**
 * The built `dist/cumulus` as a user who downloaded it runs it: copied alone into an empty
 * directory and run under `env -i` with PATH=/usr/bin:/bin (no Deno, no node, no checkout in
 * reach), a fresh HOME (so its data dir, config dir and unpack cache are the sandbox's), and
 * that directory as the working directory. The build goes through scripts/build.sh's lock
 * (`--copy-to`), so it reuses the build tests/build_e2e_test.ts made when nothing changed.
 */
import assert from "node:assert/strict";
import { SWARM_SOCKET } from "./stack.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
/** The only PATH the built executable gets. */
export const BARE_PATH = "/usr/bin:/bin";

/** A sandbox holding one downloaded `cumulus`. */
export interface Standalone {
  root: string;
  /** The empty directory the user downloaded `cumulus` into (its working directory). */
  dir: string;
  /** `$HOME` of the runs. */
  home: string;
  /** The executable: `${dir}/cumulus`. */
  exe: string;
}

/** What a run printed. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Builds (or finds dist/ up to date) and copies `cumulus` alone into an empty directory.
 * @throws {AssertionError} when the build fails.
 */
export async function makeStandalone(prefix = "cumulus-standalone-"): Promise<Standalone> {
  const root = await Deno.makeTempDir({ prefix });
  const bin = `${root}/build`;
  const b = await new Deno.Command("bash", {
    args: [`${ROOT}/scripts/build.sh`, "--copy-to", bin],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assert.equal(b.code, 0, dec.decode(b.stdout) + dec.decode(b.stderr));
  const s = {
    root,
    dir: `${root}/download`,
    home: `${root}/home`,
    exe: `${root}/download/cumulus`,
  };
  await Deno.mkdir(s.dir);
  await Deno.mkdir(s.home);
  await Deno.copyFile(`${bin}/cumulus`, s.exe);
  await Deno.chmod(s.exe, 0o755);
  await Deno.remove(bin, { recursive: true });
  return s;
}

/** The environment of a run: only these variables reach it. */
export function standaloneEnv(s: Standalone, extra: Record<string, string> = {}) {
  const env: Record<string, string> = {
    PATH: BARE_PATH,
    HOME: s.home,
    // This machine's engine (a user's default is /var/run/docker.sock, which up finds itself).
    SWARM_MANAGER: SWARM_SOCKET,
  };
  const image = Deno.env.get("CUMULUS_JOB_IMAGE");
  if (image) env.CUMULUS_JOB_IMAGE = image;
  return { ...env, ...extra };
}

/** A `cumulus ARGS` run to its end, as the user types it in the download directory. */
export async function runStandalone(
  s: Standalone,
  args: string[],
  extra: Record<string, string> = {},
): Promise<RunResult> {
  const t0 = performance.now();
  const out = await new Deno.Command("./cumulus", {
    args,
    cwd: s.dir,
    clearEnv: true,
    env: standaloneEnv(s, extra),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    ms: Math.round(performance.now() - t0),
  };
}

/** The data dir a built `cumulus up` uses by default in this sandbox. */
export function defaultDataDir(s: Standalone): string {
  return `${s.home}/.local/share/cumulus`;
}

/**
 * Leaves nothing running: `cumulus down` for `dataDirs`, then the Swarm services and
 * checkpoint volumes of `jobIds` (other tests use the same engine: only ours go).
 */
export async function cleanupStandalone(
  s: Standalone,
  dataDirs: string[],
  jobIds: string[],
): Promise<void> {
  for (const d of dataDirs) await runStandalone(s, ["down", "--data-dir", d]).catch(() => {});
  const docker = (args: string[]) =>
    new Deno.Command("docker", {
      args,
      env: { DOCKER_HOST: `unix://${SWARM_SOCKET}` },
      stdout: "piped",
      stderr: "null",
    }).output().then((o) => new TextDecoder().decode(o.stdout).split("\n").filter((x) => x));
  for (const id of jobIds) {
    const services = await docker(["service", "ls", "-q", "--filter", `label=cumulus.job=${id}`]);
    if (services.length) await docker(["service", "rm", ...services]);
    await docker(["volume", "rm", "-f", `cumulus-ckpt-${id}`]);
  }
}
