/**
 * `cumulus-agent join`: the worker side of "a worker joins with one command".
 * Run as root on the new machine with the line `cumulus worker add` prints,
 * it does everything, one progress line per step: checks root and the
 * Docker engine (installs docker.io through apt with `--install-docker`;
 * refuses on a machine that is itself a container), installs the agent and
 * libchronos.so into the prefix, registers with the orchestrator
 * (`WorkerJoin.JoinWorker`, with the join token, the worker's name, SSH target
 * and SSH host key), creates the worker user and authorises the
 * orchestrator's SSH key for it (forced command), runs `docker swarm join`
 * (argv, never a shell) and starts the agent daemon (systemd, else the
 * bundled supervisor). On a machine with GPUs it also installs the OCI runtime
 * wrapper cumulus-gpu-runc as Docker's default runtime (src/agent/join_gpu.ts),
 * restarting the engine before the Swarm join. Running it again changes
 * nothing: every step finds its work done, the same registration is accepted
 * again and a machine already in a swarm skips the Swarm join.
 * @module
 */
import { RpcConnection } from "../sdk/rpc.ts";
import { channelSecurity } from "../sdk/tls.ts";
import { parseOrchestratorEndpoint } from "../sdk/url.ts";
import { CumulusRpcError } from "../sdk/errors.ts";
import { defaultLibraryPath } from "./chronos.ts";
import { fetchPinnedCa } from "./join_ca.ts";
import { ensureDaemon, SERVICE_MODES, type ServiceMode } from "./join_daemon.ts";
import { JoinError } from "./join_error.ts";
import {
  checkGpuRuntime,
  DEFAULT_DOCKER_CONFIG,
  DEFAULT_GPU_STATE_DIR,
  ensureGpuRuntime,
  type GpuHost,
} from "./join_gpu.ts";
import { lookPath } from "./gpu_inventory.ts";
import {
  agentPathIn,
  checkDocker,
  ensureUser,
  homeOf,
  installDocker,
  installFiles,
  libDirIn,
} from "./join_setup.ts";

export type { Ran } from "./join_setup.ts";

/** The host key read when no --host-key is given. */
export const DEFAULT_HOST_KEY = "/etc/ssh/ssh_host_ed25519_key.pub";

/** The install prefix when no --prefix is given (setup-worker.sh's). */
export const DEFAULT_PREFIX = "/opt/cumulus";

/** The agent the forced command runs when no --prefix is given. */
export const DEFAULT_AGENT_PATH = `${DEFAULT_PREFIX}/bin/cumulus-agent`;

/** Usage of `cumulus-agent join`. */
export const JOIN_USAGE =
  `usage: cumulus-agent join --orchestrator URL --token T [--ca-fingerprint FP]
         [--name N] [--ssh-target USER@HOST[:PORT]] [--host-key FILE] [--advertise-addr A]
         [--install-docker] [--prefix DIR] [--agent-file F] [--chronos-lib F] [--user U]
         [--state-dir DIR] [--authorized-keys FILE] [--service-mode M] [--grace S]
         [--docker-certs-dir DIR] [--gpu-runtime F] [--no-gpu-runtime]
         [--docker-config FILE] [--gpu-state-dir DIR]
  makes this machine a worker (run as root, with the line cumulus worker add prints):
  Docker, the agent and libchronos.so, registration, the worker user and its SSH key,
  the GPU runtime wrapper (where GPUs are found), the swarm, the agent daemon; a second
  run changes nothing
  --name            worker name (default: this machine's hostname)
  --ssh-target      where the orchestrator reaches this machine's agent over SSH
                    (default: USER@<this machine's address towards the orchestrator>:22)
  --host-key        this machine's SSH host key (default ${DEFAULT_HOST_KEY})
  --advertise-addr  address this node advertises to the swarm (default: Docker's choice)
  --install-docker  when no Docker engine answers, install docker.io with apt-get
                    (never on a machine that is itself a container)
  --prefix          install directory (default ${DEFAULT_PREFIX}): bin/cumulus-agent,
                    lib/libchronos.so, the supervisor, its pid file and log
  --agent-file      the agent executable to install (default: this executable, else the
                    cumulus-agent on PATH)
  --chronos-lib     the libchronos.so to install (default: the one this agent loads)
  --user            the login the orchestrator uses, created when missing (default cumulus)
  --state-dir       Chronos state directory (default /run/chronos)
  --authorized-keys where to authorise the orchestrator's SSH key, limited to the agent's
                    forced command (default ~USER/.ssh/authorized_keys)
  --service-mode    auto (systemd when it runs, else the bundled supervisor), systemd,
                    supervisor or none (default auto)
  --grace           seconds between SIGTERM and SIGKILL when a job expires (default 10)
  --docker-certs-dir where the engine reads registry CAs (default /etc/docker/certs.d): the
                    registry's CA, when the orchestrator hands one out, goes to DIR/HOST:PORT/ca.crt
  --gpu-runtime     the cumulus-gpu-runc to install where GPUs are found (default: the one
                    beside the libchronos.so installed); it becomes Docker's default runtime
                    and the engine is restarted (systemd) before the swarm join (docs/gpus.md).
                    On a GPU machine the login must be root (--user root)
  --no-gpu-runtime  never install the GPU runtime wrapper (jobs then get no GPU)
  --docker-config   the Docker daemon config the wrapper is merged into (default
                    ${DEFAULT_DOCKER_CONFIG}; the engine is restarted only for that one)
  --gpu-state-dir   the GPU grants' and MPS directories' parent (default ${DEFAULT_GPU_STATE_DIR})
`;

/** A parsed join command line. */
export interface JoinOptions {
  orchestrator: string;
  token: string;
  caFingerprint: string;
  name: string;
  sshTarget: string;
  hostKeyFile: string;
  advertiseAddr: string;
  authorizedKeys: string;
  prefix: string;
  agentFile: string;
  chronosLib: string;
  user: string;
  stateDir: string;
  serviceMode: ServiceMode;
  graceS: number;
  installDocker: boolean;
  /** Where the Docker engine reads registry CAs (`<dir>/<host:port>/ca.crt`). */
  dockerCertsDir: string;
  /** The systemd unit file (not a flag: fixed at /etc/systemd/system). */
  unitPath: string;
  /** The cumulus-gpu-runc to install where GPUs are found ("" = beside chronosLib). */
  gpuRuntime: string;
  /** `--no-gpu-runtime`: never install the wrapper. */
  noGpuRuntime: boolean;
  /** The Docker daemon config the wrapper is merged into. */
  dockerConfig: string;
  /** Parent of the GPU grants and MPS directories. */
  gpuStateDir: string;
}

type StringKey = {
  [K in keyof JoinOptions]: JoinOptions[K] extends string ? K : never;
}[keyof JoinOptions];

const FLAGS: Record<string, StringKey | "graceS"> = {
  "--orchestrator": "orchestrator",
  "--token": "token",
  "--ca-fingerprint": "caFingerprint",
  "--name": "name",
  "--ssh-target": "sshTarget",
  "--host-key": "hostKeyFile",
  "--advertise-addr": "advertiseAddr",
  "--authorized-keys": "authorizedKeys",
  "--prefix": "prefix",
  "--agent-file": "agentFile",
  "--chronos-lib": "chronosLib",
  "--user": "user",
  "--state-dir": "stateDir",
  "--service-mode": "serviceMode",
  "--grace": "graceS",
  "--docker-certs-dir": "dockerCertsDir",
  "--gpu-runtime": "gpuRuntime",
  "--docker-config": "dockerConfig",
  "--gpu-state-dir": "gpuStateDir",
};

const PLAIN_PATH = /^\/[A-Za-z0-9._\/-]+$/;

/**
 * Parses `join`'s flags (argv after `join`); null for --help.
 * @throws {JoinError} "usage" on an unknown flag or a missing or bad value.
 */
export function parseJoinArgs(argv: readonly string[]): JoinOptions | null {
  const o: JoinOptions = {
    orchestrator: "",
    token: "",
    caFingerprint: "",
    name: "",
    sshTarget: "",
    hostKeyFile: DEFAULT_HOST_KEY,
    advertiseAddr: "",
    authorizedKeys: "",
    prefix: DEFAULT_PREFIX,
    agentFile: "",
    chronosLib: "",
    user: "cumulus",
    stateDir: "/run/chronos",
    serviceMode: "auto",
    graceS: 10,
    installDocker: false,
    dockerCertsDir: "/etc/docker/certs.d",
    unitPath: "/etc/systemd/system/cumulus-agent.service",
    gpuRuntime: "",
    noGpuRuntime: false,
    dockerConfig: DEFAULT_DOCKER_CONFIG,
    gpuStateDir: DEFAULT_GPU_STATE_DIR,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--help" || a === "-h") return null;
    if (a === "--install-docker") {
      o.installDocker = true;
      continue;
    }
    if (a === "--no-gpu-runtime") {
      o.noGpuRuntime = true;
      continue;
    }
    const eq = a.indexOf("=");
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const key = FLAGS[flag];
    if (!key) throw new JoinError("usage", `unknown argument ${JSON.stringify(a)}`);
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined || value === "") {
      throw new JoinError("usage", `${flag} needs a value`);
    }
    if (key === "graceS") {
      if (!/^[0-9]{1,4}$/.test(value)) throw new JoinError("usage", "--grace: whole seconds");
      o.graceS = Number(value);
    } else if (key === "serviceMode") {
      if (!SERVICE_MODES.includes(value as ServiceMode)) {
        throw new JoinError("usage", `--service-mode: one of ${SERVICE_MODES.join(", ")}`);
      }
      o.serviceMode = value as ServiceMode;
    } else {
      o[key] = value;
    }
  }
  if (!o.orchestrator) throw new JoinError("usage", "--orchestrator URL is required");
  if (!o.token) throw new JoinError("usage", "--token T is required");
  if (o.advertiseAddr && !/^[A-Za-z0-9.:\[\]-]+$/.test(o.advertiseAddr)) {
    throw new JoinError("usage", `--advertise-addr: not an address: ${o.advertiseAddr}`);
  }
  // These end up in the forced command, the unit file and the supervisor script.
  for (
    const [flag, p] of [
      ["--prefix", o.prefix],
      ["--state-dir", o.stateDir],
      ["--docker-certs-dir", o.dockerCertsDir],
      ["--docker-config", o.dockerConfig],
      ["--gpu-state-dir", o.gpuStateDir],
    ]
  ) {
    if (!PLAIN_PATH.test(p)) {
      throw new JoinError("usage", `${flag}: must be an absolute plain path, got ${p}`);
    }
  }
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(o.user)) {
    throw new JoinError("usage", `--user: not a user name: ${o.user}`);
  }
  return o;
}

const KEY_LINE_RE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) [A-Za-z0-9+\/]+=*/;

/**
 * The forced command of the orchestrator's key: the installed agent's
 * `ssh-dispatch`, with the library and state directory it uses (the same as
 * the daemon's). Only plain paths reach it (parseJoinArgs checks them).
 */
export function forcedCommand(
  o: Pick<JoinOptions, "prefix" | "stateDir"> & { gpuEnv?: readonly string[] },
): string {
  const gpu = (o.gpuEnv ?? []).map((kv) => `${kv} `).join("");
  return `env CUMULUS_CHRONOS_PATH=${libDirIn(o.prefix)} CHRONOS_STATE_DIR=${o.stateDir} ` +
    `${gpu}${agentPathIn(o.prefix)} ssh-dispatch`;
}

/**
 * `authorized_keys` with the orchestrator's key allowed to run only `command`
 * (no shell sees the orchestrator's commands: ssh-dispatch parses them): an
 * older line of the same key is replaced, other lines kept.
 * @returns The new text, or null when it already holds that line.
 * @throws {JoinError} "orchestrator" when the key is no OpenSSH public key line.
 */
export function withOrchestratorKey(
  current: string,
  key: string,
  command: string,
): string | null {
  const m = KEY_LINE_RE.exec(key.trim());
  if (!m) throw new JoinError("orchestrator", "the orchestrator sent no OpenSSH public key");
  const body = m[0];
  const line = `command="${command}",no-pty,no-port-forwarding,` +
    `no-agent-forwarding,no-X11-forwarding ${body} cumulus-orchestrator`;
  const lines = current.split("\n").filter((l) => l !== "");
  if (lines.includes(line)) return null;
  return [...lines.filter((l) => !l.includes(body)), line].map((l) => l + "\n").join("");
}

/** What registration answers. */
export interface JoinAnswer {
  swarmJoinToken: string;
  managerAddress: string;
  orchestratorSshKey: string;
  /** The registry job images come from ("" = none). */
  registry?: string;
  /** The CA (PEM) of its certificate ("" = none). */
  registryCaPem?: string;
}

/** The machine a join runs on; injected so tests replace any part. */
export interface JoinHost extends GpuHost {
  /** The effective user id. */
  uid(): number;
  /** Reads a text file. */
  readTextFile(path: string): Promise<string>;
  /** This machine's hostname. */
  hostname(): string;
  /** The local address this machine uses to reach `host:port`. */
  localAddressTo(host: string, port: number): Promise<string>;
  /** Calls JoinWorker. */
  register(o: JoinOptions, req: Record<string, string>): Promise<JoinAnswer>;
  /** Writes a file owner-only (0600), creating its directory (0700). */
  writePrivateFile(path: string, text: string): Promise<void>;
  /** The agent executable to install when --agent-file is not given ("" when unknown). */
  selfExecutable(): Promise<string>;
  /** The libchronos.so this agent loads ("" when none is found). */
  selfLibrary(): string;
  /** DOCKER_HOST of this process ("" when unset). */
  dockerHost(): string;
}

function endpointOf(url: string) {
  try {
    return parseOrchestratorEndpoint(url);
  } catch (err) {
    throw new JoinError("usage", `--orchestrator: ${(err as Error).message}`);
  }
}

/** The port of an endpoint's `host:port` target. */
function portOf(target: string): number {
  return Number(target.slice(target.lastIndexOf(":") + 1));
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0] ?? "";
}

/**
 * Step "registry": the registry's CA where this machine's engine reads it, so
 * it pulls job images over TLS with nothing marked insecure (read at each pull:
 * no engine restart).
 */
async function trustRegistry(o: JoinOptions, answer: JoinAnswer, host: JoinHost) {
  const registry = answer.registry ?? "";
  if (!registry) {
    host.say("registry: none configured: job images must be on this machine already");
    return;
  }
  if (!/^[A-Za-z0-9.-]+:[0-9]+$/.test(registry)) {
    throw new JoinError("orchestrator", `the orchestrator sent a bad registry address`);
  }
  const pem = (answer.registryCaPem ?? "").trim();
  if (!pem) {
    host.say(`registry: ${registry} (no CA handed out: a public CA, or trusted by hand)`);
    return;
  }
  const path = `${o.dockerCertsDir}/${registry}/ca.crt`;
  const text = new TextEncoder().encode(`${pem}\n`);
  const current = await host.readBytes(path);
  if (current !== null && new TextDecoder().decode(current) === `${pem}\n`) {
    host.say(`registry: ${registry}: CA already trusted (${path})`);
    return;
  }
  await host.writeFileAtomic(path, text, 0o644).catch((err) => {
    throw new JoinError("local", `cannot write ${path}: ${(err as Error).message}`);
  });
  host.say(`registry: ${registry}: CA installed for the Docker engine (${path})`);
}

/** Fills in the agent and library to install from what is running. */
async function sources(o: JoinOptions, host: JoinHost): Promise<JoinOptions> {
  const agentFile = o.agentFile || await host.selfExecutable();
  if (!agentFile) {
    throw new JoinError(
      "usage",
      "cannot tell which cumulus-agent executable to install: pass --agent-file PATH",
    );
  }
  const chronosLib = o.chronosLib || host.selfLibrary();
  if (!chronosLib) {
    throw new JoinError("usage", "libchronos.so not found: pass --chronos-lib PATH");
  }
  for (const [flag, path] of [["--agent-file", agentFile], ["--chronos-lib", chronosLib]]) {
    if (!(await host.exists(path))) {
      throw new JoinError("usage", `${flag}: ${path} does not exist`);
    }
  }
  return { ...o, agentFile, chronosLib };
}

/**
 * Runs the join.
 * @returns The node id this machine has in the swarm.
 * @throws {JoinError} One line saying what failed.
 */
export async function join(opts: JoinOptions, host: JoinHost): Promise<string> {
  if (host.uid() !== 0) {
    throw new JoinError(
      "root",
      "join must run as root (it installs and joins the swarm): use sudo",
    );
  }
  // Nothing on this machine changes before the join token is accepted.
  const checked = await checkDocker(opts, host);
  const o = await sources(opts, host);
  // GPUs found with a login that is not root, or no wrapper to install: refused here.
  const gpuPlan = await checkGpuRuntime(o, host);
  let hostKey: string;
  try {
    hostKey = firstLine(await host.readTextFile(o.hostKeyFile));
  } catch (err) {
    throw new JoinError(
      "local",
      `cannot read the SSH host key ${o.hostKeyFile} (--host-key): ${(err as Error).message}`,
    );
  }
  const endpoint = endpointOf(o.orchestrator);
  const name = o.name || host.hostname();
  const sshTarget = o.sshTarget ||
    `${o.user}@${await host.localAddressTo(endpoint.host, portOf(endpoint.target)).catch(
      (err) => {
        throw new JoinError(
          "orchestrator",
          `cannot reach the orchestrator at ${endpoint.target}: ${(err as Error).message}`,
        );
      },
    )}:22`;
  const answer = await host.register(o, {
    joinToken: o.token,
    name,
    sshTarget,
    sshHostKey: hostKey,
  });
  host.say(`orchestrator: registered as ${name} (ssh ${sshTarget}, host key pinned)`);
  const swarmInfo = checked ?? await installDocker(host);
  await installFiles(o, host);
  await ensureUser(o, host);
  // Before the Swarm join: the engine may restart to load the runtime.
  const gpuEnv = await ensureGpuRuntime(o, gpuPlan, host);
  if (answer.orchestratorSshKey) {
    const keysFile = o.authorizedKeys || `${await homeOf(host, o.user)}/.ssh/authorized_keys`;
    const current = await host.readTextFile(keysFile).catch(() => "");
    const next = withOrchestratorKey(
      current,
      answer.orchestratorSshKey,
      forcedCommand({ ...o, gpuEnv }),
    );
    if (next !== null) {
      await host.writePrivateFile(keysFile, next).catch((err) => {
        throw new JoinError("local", `cannot write ${keysFile}: ${(err as Error).message}`);
      });
      // sshd reads the file as the login: the login owns it, and the ~/.ssh this made (0700).
      const owned = [keysFile];
      if (!o.authorizedKeys) owned.unshift(keysFile.slice(0, keysFile.lastIndexOf("/")));
      for (const path of owned) {
        const r = await host.run(["chown", `${o.user}:`, path]);
        if (r.code !== 0) {
          throw new JoinError("local", `chown ${o.user} ${path}: ${firstLine(r.stderr)}`);
        }
      }
    }
    host.say(
      `ssh: orchestrator key ${next === null ? "already " : ""}authorised in ${keysFile} ` +
        "(forced command: the agent's ssh-dispatch only)",
    );
  } else {
    host.say("ssh: the orchestrator has no SSH key (ssh_key_path): nothing authorised");
  }
  await trustRegistry(o, answer, host);
  const swarm = JSON.parse(swarmInfo || "{}") as { LocalNodeState?: string; NodeID?: string };
  let nodeId: string;
  if (swarm.LocalNodeState === "active" || swarm.LocalNodeState === "pending") {
    nodeId = swarm.NodeID ?? "";
    host.say(`swarm: already in a swarm as node ${nodeId || "?"}: skipped`);
  } else {
    const argv = ["docker", "swarm", "join", "--token", answer.swarmJoinToken];
    if (o.advertiseAddr) argv.push("--advertise-addr", o.advertiseAddr);
    argv.push(answer.managerAddress);
    const joined = await host.run(argv);
    if (joined.code !== 0) {
      throw new JoinError(
        "swarm",
        `cannot join the swarm at ${answer.managerAddress}: ${firstLine(joined.stderr)}`,
      );
    }
    const id = await host.run(["docker", "info", "--format", "{{.Swarm.NodeID}}"]);
    nodeId = id.stdout.trim();
    host.say(`swarm: joined ${answer.managerAddress} as node ${nodeId}`);
  }
  await ensureDaemon({ ...o, dockerHost: host.dockerHost(), gpuEnv }, host);
  host.say(`done: ${name} is a worker (node ${nodeId || "?"})`);
  return nodeId;
}

/** Calls JoinWorker over gRPC, TLS verified against the CA pinned by fingerprint. */
async function registerOverGrpc(
  o: JoinOptions,
  req: Record<string, string>,
): Promise<JoinAnswer> {
  const endpoint = endpointOf(o.orchestrator);
  if (!endpoint.tls && o.caFingerprint) {
    throw new JoinError("usage", "--ca-fingerprint needs a grpcs:// orchestrator address");
  }
  const caPem = endpoint.tls && o.caFingerprint
    ? await fetchPinnedCa(endpoint.host, portOf(endpoint.target), o.caFingerprint)
    : undefined;
  const rpc = new RpcConnection(endpoint.target, {
    connectTimeoutMs: 10_000,
    callTimeoutMs: 30_000,
    security: channelSecurity(endpoint, caPem),
    token: "",
    service: "WorkerJoin",
  });
  try {
    const res = await rpc.unary("JoinWorker", req);
    return {
      swarmJoinToken: String(res.swarmJoinToken ?? ""),
      managerAddress: String(res.managerAddress ?? ""),
      orchestratorSshKey: String(res.orchestratorSshKey ?? ""),
      registry: String(res.registry ?? ""),
      registryCaPem: String(res.registryCaPem ?? ""),
    };
  } catch (err) {
    if (err instanceof CumulusRpcError && err.code === "UNAUTHENTICATED") {
      throw new JoinError("token", err.message);
    }
    throw new JoinError(
      "orchestrator",
      `orchestrator at ${endpoint.target}: ${(err as Error).message}`,
    );
  } finally {
    rpc.close();
  }
}

async function containerHint(): Promise<string> {
  try {
    await Deno.stat("/.dockerenv");
    return "/.dockerenv exists";
  } catch {
    // Not Docker's marker; systemd-nspawn, podman and LXC set container= for PID 1.
  }
  try {
    const env = await Deno.readTextFile("/proc/1/environ");
    const c = env.split("\0").find((v) => v.startsWith("container="));
    if (c) return `${c} in /proc/1/environ`;
  } catch {
    // Unreadable: no evidence either way.
  }
  return "";
}

/**
 * The agent executable that is running: CUMULUS_AGENT_FILE when a launcher
 * names itself there, else Deno.execPath() when it is a compiled program,
 * else (deno itself runs the code: a development checkout or the
 * self-extracting build) the cumulus-agent on PATH; "" when none.
 */
async function selfExecutable(): Promise<string> {
  const named = Deno.env.get("CUMULUS_AGENT_FILE");
  if (named) return named;
  const exec = Deno.execPath();
  if (!/(^|\/)deno$/.test(exec)) return exec;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").filter(Boolean)) {
    const path = `${dir}/cumulus-agent`;
    try {
      if ((await Deno.stat(path)).isFile) return path;
    } catch {
      // Not in this directory.
    }
  }
  return "";
}

function selfLibrary(): string {
  try {
    return defaultLibraryPath();
  } catch {
    return "";
  }
}

/** The real machine: Deno's process, files and network. */
export const realJoinHost: JoinHost = {
  uid: () => Deno.uid() ?? -1,
  run: async (argv) => {
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  },
  readTextFile: (path) => Deno.readTextFile(path),
  writePrivateFile: async (path, text) => {
    const dir = path.slice(0, path.lastIndexOf("/"));
    if (dir) await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp`;
    await Deno.writeTextFile(tmp, text, { mode: 0o600 });
    await Deno.chmod(tmp, 0o600);
    await Deno.rename(tmp, path);
  },
  containerHint,
  hostname: () => Deno.hostname(),
  localAddressTo: async (h, port) => {
    const conn = await Deno.connect({ hostname: h.replace(/^\[|\]$/g, ""), port });
    try {
      return (conn.localAddr as Deno.NetAddr).hostname;
    } finally {
      conn.close();
    }
  },
  register: registerOverGrpc,
  say: (line) => console.log(`join: ${line}`),
  readBytes: async (path) => {
    try {
      return await Deno.readFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
  },
  writeFileAtomic: async (path, bytes, mode) => {
    const dir = path.slice(0, path.lastIndexOf("/"));
    if (dir) await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
    const tmp = `${path}.tmp`;
    await Deno.writeFile(tmp, bytes, { mode });
    await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
  },
  exists: async (path) => {
    try {
      await Deno.stat(path);
      return true;
    } catch {
      return false;
    }
  },
  selfExecutable,
  selfLibrary,
  dockerHost: () => Deno.env.get("DOCKER_HOST") ?? "",
  gpuRoot: () => Deno.env.get("CUMULUS_GPU_ROOT") || "/",
  findCommand: async (name) => (await lookPath(name, Deno.env.get("PATH") ?? "")) ?? "",
};

/**
 * `cumulus-agent join ARGS`: runs the join, printing progress on stdout and
 * one error line on stderr.
 * @returns The exit code (0, or the failure's code).
 */
export async function joinCommand(
  argv: readonly string[],
  io: { stdout(t: string): void; stderr(t: string): void },
  host: JoinHost = realJoinHost,
): Promise<number> {
  try {
    const o = parseJoinArgs(argv);
    if (!o) {
      io.stdout(JOIN_USAGE);
      return 0;
    }
    await join(o, { ...host, say: (line) => io.stdout(`join: ${line}\n`) });
    return 0;
  } catch (err) {
    if (err instanceof JoinError) {
      io.stderr(`cumulus-agent join: ${err.message}\n`);
      return err.exitCode;
    }
    io.stderr(`cumulus-agent join: ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}
