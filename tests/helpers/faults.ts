/**
 * Test helpers for the fault tests (issue 14, item 3): a real orchestrator
 * run under the real supervisor (`main.ts supervise -- main.ts orchestrator`),
 * whose child the test can SIGKILL, and the clean-up of what a test's
 * orchestrator left in the shared Docker engine.
 * @module
 */
import { readSupervisorState, type SupervisorState } from "../../src/cli/supervise.ts";
import { connectDocker, SwarmClient } from "../../src/swarm/mod.ts";
import { freePort } from "./process.ts";
import { JOB_IMAGE, SWARM_SOCKET, TEST_ADMIN_TOKEN, TEST_ADMIN_USER } from "./stack.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** An orchestrator under `cumulus supervise`, as `cumulus up` runs it. */
export interface SupervisedOrchestrator {
  /** "127.0.0.1:PORT" for clients. */
  url: string;
  dataDir: string;
  /** The supervisor's run dir (state, crash records, the piece's log). */
  runDir: string;
  /** The supervisor process (the test's child). */
  supervisor: Deno.ChildProcess;
  /** What the supervisor says runs now, or null before it wrote it. */
  state(): Promise<SupervisorState | null>;
  /** The orchestrator's log (the supervisor's and its child's output). */
  log(): Promise<string>;
  /** SIGTERM to the supervisor (which stops the orchestrator), waits, removes the data. */
  stop(): Promise<void>;
}

/** Waits (polling every 50 ms) until `fn` returns a value other than null, or throws after `ms`. */
export async function until<T>(what: string, fn: () => Promise<T | null>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts `main.ts supervise --name orchestrator -- main.ts orchestrator` on a
 * free loopback port and a fresh data dir, its output appended to the piece's
 * log (as `cumulus up` does), and waits until the orchestrator listens.
 * @param env Extra orchestrator settings (config environment variables).
 */
export async function startSupervisedOrchestrator(
  env: Record<string, string> = {},
): Promise<SupervisedOrchestrator> {
  const dataDir = await Deno.makeTempDir({ prefix: "cumulus-fault-" });
  const runDir = `${dataDir}/run`;
  await Deno.mkdir(runDir);
  const port = freePort();
  const logFile = `${runDir}/orchestrator.log`;
  const deno = Deno.execPath();
  const supervisor = new Deno.Command("sh", {
    args: [
      "-c",
      'log="$1"; shift; exec "$@" </dev/null >>"$log" 2>&1',
      "sh",
      logFile,
      deno,
      "run",
      "-A",
      "main.ts",
      "supervise",
      "--name",
      "orchestrator",
      "--run-dir",
      runDir,
      "--",
      deno,
      "run",
      "-A",
      "main.ts",
      "orchestrator",
      "--port",
      String(port),
      "--data-dir",
      dataDir,
    ],
    cwd: ROOT,
    env: {
      ORCHESTRATOR_METRICS_PORT: "-1",
      SWARM_MANAGER: SWARM_SOCKET,
      CUMULUS_JOB_IMAGE: JOB_IMAGE,
      CUMULUS_GPU_PLACEMENT: "off",
      CUMULUS_STOP_GRACE_PERIOD: "2",
      CUMULUS_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      CUMULUS_ADMIN_USER: TEST_ADMIN_USER,
      ...env,
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const log = () => Deno.readTextFile(logFile).catch(() => "");
  const orch: SupervisedOrchestrator = {
    url: `127.0.0.1:${port}`,
    dataDir,
    runDir,
    supervisor,
    state: () => readSupervisorState(runDir, "orchestrator"),
    log,
    async stop() {
      try {
        supervisor.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await supervisor.status;
      await removeLeftovers(dataDir);
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await until(
      "the orchestrator to listen",
      async () => (await log()).includes("listening on") ? true : null,
      60_000,
    );
  } catch (err) {
    await orch.stop();
    throw new Error(`${(err as Error).message}; its log:\n${await log()}`);
  }
  return orch;
}

/**
 * Removes the Swarm services and checkpoint volumes that the orchestrator of
 * `dataDir` left in the shared engine (only its own: other tests run beside).
 */
export async function removeLeftovers(dataDir: string): Promise<void> {
  const instanceId = (await Deno.readTextFile(`${dataDir}/instance-id`).catch(() => "")).trim();
  if (instanceId === "") return;
  const swarm = new SwarmClient(connectDocker(SWARM_SOCKET));
  for (const s of await swarm.listServices(`cumulus.orchestrator=${instanceId}`)) {
    await swarm.removeService(s.id);
  }
  // A volume is in use until its container is gone (a second or so after its service).
  for (let i = 0; i < 40; i++) {
    let left = 0;
    for (const v of await swarm.listVolumes("cumulus.orchestrator", instanceId)) {
      if (!(await swarm.removeVolume(v.name))) left++;
    }
    if (left === 0) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A signal to a pid that may be gone already: false when it was. */
export function signalPid(pid: number, sig: Deno.Signal): boolean {
  try {
    Deno.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Steps of the complete checkpoints under `dir`: directories named by their
 * 12-digit step that hold a manifest, at any depth. Reads an L1 directory
 * (a job's volume) and an s3rver data directory alike (s3rver keeps each key
 * as a path, with a suffix after `manifest.json`).
 */
export async function checkpointSteps(dir: string): Promise<number[]> {
  const steps: number[] = [];
  const walk = async (path: string, name: string): Promise<void> => {
    const entries: Deno.DirEntry[] = [];
    try {
      for await (const e of Deno.readDir(path)) entries.push(e);
    } catch {
      return; // Removed meanwhile (a superseded step).
    }
    if (/^\d{12}$/.test(name) && entries.some((e) => e.name.startsWith("manifest.json"))) {
      steps.push(Number(name));
    }
    for (const e of entries) if (e.isDirectory) await walk(`${path}/${e.name}`, e.name);
  };
  await walk(dir, "");
  return steps.sort((a, b) => a - b);
}

/** Pid file of the engine scripts/lib/docker_engine.sh starts (CUMULUS_DOCKER_PIDFILE). */
export const DOCKER_PIDFILE = Deno.env.get("CUMULUS_DOCKER_PIDFILE") ?? "/run/cumulus-docker.pid";

/** True while `pid` is a live process (not gone, not a zombie). */
function running(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Runs the docker CLI against the test engine; resolves with its trimmed stdout, or null on failure. */
export async function dockerCli(args: string[]): Promise<string | null> {
  const out = await new Deno.Command("docker", {
    args,
    env: { DOCKER_HOST: `unix://${SWARM_SOCKET}` },
    stdout: "piped",
    stderr: "null",
  }).output();
  return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
}

/** Removes the tags a push to registry `addr` left on the manager (`addr/cumulus-job:<id>`). */
export async function removePushedTags(addr: string): Promise<void> {
  const tags = await dockerCli([
    "image",
    "ls",
    "--format",
    "{{.Repository}}:{{.Tag}}",
    `${addr}/cumulus-job`,
  ]);
  for (const t of (tags ?? "").split("\n").filter(Boolean)) await dockerCli(["image", "rm", t]);
}

/**
 * Stops the Docker engine the bootstrap started (SIGTERM to the pid in its
 * pid file, as an operator's `systemctl stop docker` would; SIGKILL after
 * `graceMs`) and waits until it is gone. Resolves with its pid.
 */
export async function stopDockerEngine(graceMs = 60_000): Promise<number> {
  const pid = Number((await Deno.readTextFile(DOCKER_PIDFILE)).trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`${DOCKER_PIDFILE}: no pid, got ${pid}`);
  signalPid(pid, "SIGTERM");
  const end = Date.now() + graceMs;
  while (running(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  if (running(pid)) signalPid(pid, "SIGKILL");
  await until("dockerd to exit", () => Promise.resolve(running(pid) ? null : true), 30_000);
  return pid;
}

/**
 * Starts the Docker engine exactly as the bootstrap does
 * (`start_docker_engine` of scripts/lib/docker_engine.sh: setsid dockerd with
 * the project's socket, data root and pid file) and waits until it answers.
 * Does nothing when an engine answers already.
 */
export async function startDockerEngine(): Promise<void> {
  if (await dockerCli(["version", "--format", "{{.Server.Version}}"]) !== null) return;
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      "source scripts/lib/common.sh && source scripts/lib/docker_engine.sh && start_docker_engine",
    ],
    cwd: ROOT,
    env: { CUMULUS_DOCKER_SOCK: SWARM_SOCKET, CUMULUS_DOCKER_PIDFILE: DOCKER_PIDFILE },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`start_docker_engine failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/**
 * Waits until the engine is a healthy single Swarm manager again: Swarm
 * active with the control plane available, and this node Ready and Active.
 */
export async function waitSwarmHealthy(ms = 120_000): Promise<void> {
  await until("Swarm active and the node ready", async () => {
    const info = await dockerCli([
      "info",
      "--format",
      "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
    ]);
    if (info !== "active true") return null;
    const nodes = await dockerCli([
      "node",
      "ls",
      "--format",
      "{{.Self}} {{.Status}} {{.Availability}}",
    ]);
    return nodes?.split("\n").includes("true Ready Active") ? true : null;
  }, ms);
}
