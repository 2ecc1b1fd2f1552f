/**
 * `cumulus-agent join`: the worker side of "a worker joins with one command".
 * Run as root on the new machine with the line `cumulus worker add` prints:
 * checks the machine (root, a Docker engine), registers with the
 * orchestrator (`WorkerJoin.JoinWorker`, with the join token, the worker's
 * name, SSH target and SSH host key), then runs `docker swarm join` (argv,
 * never a shell). Running it again changes nothing: the same registration is
 * accepted again and a machine already in a swarm skips the Swarm join.
 * @module
 */
import { RpcConnection } from "../sdk/rpc.ts";
import { channelSecurity } from "../sdk/tls.ts";
import { parseOrchestratorEndpoint } from "../sdk/url.ts";
import { CumulusRpcError } from "../sdk/errors.ts";
import { fetchPinnedCa } from "./join_ca.ts";
import { JoinError } from "./join_error.ts";

/** The host key read when no --host-key is given. */
export const DEFAULT_HOST_KEY = "/etc/ssh/ssh_host_ed25519_key.pub";

/** The agent the forced command runs when no --agent-path is given (setup-worker.sh's). */
export const DEFAULT_AGENT_PATH = "/opt/cumulus/bin/cumulus-agent";

/** Usage of `cumulus-agent join`. */
export const JOIN_USAGE =
  `usage: cumulus-agent join --orchestrator URL --token T [--ca-fingerprint FP]
         [--name N] [--ssh-target USER@HOST[:PORT]] [--host-key FILE] [--advertise-addr A]
         [--authorized-keys FILE [--agent-path PATH]]
  registers this machine as a worker (run as root, with the line cumulus worker add prints)
  --name            worker name (default: this machine's hostname)
  --ssh-target      where the orchestrator reaches this machine's agent over SSH
                    (default: cumulus@<this machine's address towards the orchestrator>:22)
  --host-key        this machine's SSH host key (default ${DEFAULT_HOST_KEY})
  --advertise-addr  address this node advertises to the swarm (default: Docker's choice)
  --authorized-keys write the orchestrator's SSH key there, limited to the agent's forced
                    command (default: print the key only)
  --agent-path      the agent that forced command runs (default ${DEFAULT_AGENT_PATH})
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
  agentPath: string;
}

const FLAGS: Record<string, keyof JoinOptions> = {
  "--orchestrator": "orchestrator",
  "--token": "token",
  "--ca-fingerprint": "caFingerprint",
  "--name": "name",
  "--ssh-target": "sshTarget",
  "--host-key": "hostKeyFile",
  "--advertise-addr": "advertiseAddr",
  "--authorized-keys": "authorizedKeys",
  "--agent-path": "agentPath",
};

/**
 * Parses `join`'s flags (argv after `join`); null for --help.
 * @throws {JoinError} "usage" on an unknown flag or a missing value.
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
    agentPath: DEFAULT_AGENT_PATH,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--help" || a === "-h") return null;
    const eq = a.indexOf("=");
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const key = FLAGS[flag];
    if (!key) throw new JoinError("usage", `unknown argument ${JSON.stringify(a)}`);
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined || value === "") {
      throw new JoinError("usage", `${flag} needs a value`);
    }
    o[key] = value;
  }
  if (!o.orchestrator) throw new JoinError("usage", "--orchestrator URL is required");
  if (!o.token) throw new JoinError("usage", "--token T is required");
  if (o.advertiseAddr && !/^[A-Za-z0-9.:\[\]-]+$/.test(o.advertiseAddr)) {
    throw new JoinError("usage", `--advertise-addr: not an address: ${o.advertiseAddr}`);
  }
  if (!/^\/[A-Za-z0-9._\/-]+$/.test(o.agentPath)) {
    throw new JoinError("usage", `--agent-path: must be an absolute path, got ${o.agentPath}`);
  }
  return o;
}

const KEY_LINE_RE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) [A-Za-z0-9+\/]+=*/;

/**
 * `authorized_keys` with the orchestrator's key allowed to run only `agentPath ssh-dispatch`
 * (no shell sees its commands): an older line of the same key is replaced, other lines kept.
 * @returns The new text, or null when it already holds that line.
 * @throws {JoinError} "orchestrator" when the key is no OpenSSH public key line.
 */
export function withOrchestratorKey(
  current: string,
  key: string,
  agentPath: string,
): string | null {
  const m = KEY_LINE_RE.exec(key.trim());
  if (!m) throw new JoinError("orchestrator", "the orchestrator sent no OpenSSH public key");
  const body = m[0];
  const line = `command="${agentPath} ssh-dispatch",no-pty,no-port-forwarding,` +
    `no-agent-forwarding,no-X11-forwarding ${body} cumulus-orchestrator`;
  const lines = current.split("\n").filter((l) => l !== "");
  if (lines.includes(line)) return null;
  return [...lines.filter((l) => !l.includes(body)), line].map((l) => l + "\n").join("");
}

/** What a command printed and how it exited. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** What registration answers. */
export interface JoinAnswer {
  swarmJoinToken: string;
  managerAddress: string;
  orchestratorSshKey: string;
}

/** The machine a join runs on; injected so tests replace any part. */
export interface JoinHost {
  /** The effective user id. */
  uid(): number;
  /** Runs argv (no shell) and collects its output. */
  run(argv: string[]): Promise<Ran>;
  /** Reads a text file. */
  readTextFile(path: string): Promise<string>;
  /** Why this machine looks like a container ("" when it does not). */
  containerHint(): Promise<string>;
  /** This machine's hostname. */
  hostname(): string;
  /** The local address this machine uses to reach `host:port`. */
  localAddressTo(host: string, port: number): Promise<string>;
  /** Calls JoinWorker. */
  register(o: JoinOptions, req: Record<string, string>): Promise<JoinAnswer>;
  /** Writes a file owner-only (0600), creating its directory (0700). */
  writePrivateFile(path: string, text: string): Promise<void>;
  /** Prints one progress line. */
  say(line: string): void;
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
 * Runs the join.
 * @returns The node id this machine has in the swarm.
 * @throws {JoinError} One line saying what failed.
 */
export async function join(o: JoinOptions, host: JoinHost): Promise<string> {
  if (host.uid() !== 0) {
    throw new JoinError("root", "join must run as root (it runs docker swarm join): use sudo");
  }
  const info = await host.run(["docker", "info", "--format", "{{json .Swarm}}"])
    .catch((err) => ({ code: 127, stdout: "", stderr: (err as Error).message }));
  if (info.code !== 0) {
    const container = await host.containerHint();
    throw new JoinError(
      "docker",
      container
        ? `no Docker engine reachable, and this machine is itself a container (${container}): ` +
          "run the join on the host"
        : `no Docker engine reachable (${firstLine(info.stderr) || `exit ${info.code}`}): ` +
          "install Docker Engine and start it",
    );
  }
  host.say("docker: engine reachable");
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
    `cumulus@${await host.localAddressTo(endpoint.host, portOf(endpoint.target)).catch((err) => {
      throw new JoinError(
        "orchestrator",
        `cannot reach the orchestrator at ${endpoint.target}: ${(err as Error).message}`,
      );
    })}:22`;
  const answer = await host.register(o, {
    joinToken: o.token,
    name,
    sshTarget,
    sshHostKey: hostKey,
  });
  host.say(`orchestrator: registered as ${name} (ssh ${sshTarget}, host key pinned)`);
  if (answer.orchestratorSshKey && o.authorizedKeys) {
    const current = await host.readTextFile(o.authorizedKeys).catch(() => "");
    const next = withOrchestratorKey(current, answer.orchestratorSshKey, o.agentPath);
    if (next !== null) {
      await host.writePrivateFile(o.authorizedKeys, next).catch((err) => {
        throw new JoinError(
          "local",
          `cannot write ${o.authorizedKeys} (--authorized-keys): ${(err as Error).message}`,
        );
      });
    }
    host.say(
      `ssh: orchestrator key ${next === null ? "already " : ""}authorised in ${o.authorizedKeys}`,
    );
  } else if (answer.orchestratorSshKey) {
    host.say(`ssh: orchestrator key (for --authorized-keys): ${answer.orchestratorSshKey}`);
  }
  const swarm = JSON.parse(info.stdout || "{}") as { LocalNodeState?: string; NodeID?: string };
  if (swarm.LocalNodeState === "active" || swarm.LocalNodeState === "pending") {
    host.say(`swarm: already in a swarm as node ${swarm.NodeID ?? "?"}: skipped`);
    return swarm.NodeID ?? "";
  }
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
  const nodeId = id.stdout.trim();
  host.say(`swarm: joined ${answer.managerAddress} as node ${nodeId}`);
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
