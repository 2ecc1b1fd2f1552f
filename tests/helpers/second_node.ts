/**
 * Test helper: a second Swarm node on this machine. A network namespace the
 * test creates, joined to the project bridge (cumulus0, 198.18.0.1/24) by a
 * veth pair, runs its own Docker engine, which joins the local Swarm as a
 * worker at 198.18.0.2 (unless `join: false`: then the test joins it, e.g.
 * through `cumulus-agent join` run with {@link SecondNode.exec}). Images reach
 * it with `docker save | docker load`, or from a registry on the manager's
 * address (tests/registry_test.ts: start it with `noImages`); its data root is
 * kept between runs so that a load happens once. Everything else is torn down
 * by `stop()`.
 * @module
 */

/** Address of the manager on the project bridge. */
export const MANAGER_ADDR = "198.18.0.1";
/** Address of the second node inside its namespace. */
export const NODE_ADDR = "198.18.0.2";

const NETNS = "cumulus-w1";
const VETH_HOST = "cw1-host";
const VETH_NS = "cw1-ns";
const SOCK = "/run/cumulus-w1.sock";
const PIDFILE = "/run/cumulus-w1.pid";
const DATA_ROOT = "/var/lib/cumulus-w1";
const EXEC_ROOT = "/run/cumulus-w1-exec";

/** Options of {@link startSecondNode}. */
export interface SecondNodeOptions {
  /** Join the local swarm as a worker. @default true */
  join?: boolean;
  /**
   * Start with no images at all (every image and stopped container of earlier
   * runs removed), so a job there pulls its image layer by layer, as on a
   * fresh machine. A later run that preloads images loads them again.
   */
  noImages?: boolean;
}

/** A running second node. */
export interface SecondNode {
  /** Its Swarm node id ("" while it has not joined: `join: false`). */
  nodeId: string;
  /**
   * Runs a program inside the node's network namespace, with DOCKER_HOST set
   * to its engine; resolves with its exit code and output.
   */
  exec(
    argv: string[],
    env?: Record<string, string>,
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /**
   * Starts a long-running program inside the node's network namespace (a
   * daemon the test stops itself), with DOCKER_HOST set to its engine.
   */
  spawn(argv: string[]): Deno.ChildProcess;
  /** Its Docker API socket (reachable from the host). */
  socket: string;
  /** Runs the docker CLI against the second node's engine. */
  docker(args: string[]): Promise<string>;
  /** Leaves the swarm, stops the engine, removes the namespace. */
  stop(): Promise<void>;
}

async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return text.trim();
}

async function tryRun(cmd: string, args: string[], env: Record<string, string> = {}) {
  try {
    return await run(cmd, args, env);
  } catch {
    return null;
  }
}

const managerEnv = () => ({
  DOCKER_HOST: Deno.env.get("DOCKER_HOST") ?? "unix:///run/cumulus-docker.sock",
});
const nodeEnv = { DOCKER_HOST: `unix://${SOCK}` };

async function teardown(managerNodeId?: string): Promise<void> {
  await tryRun("docker", ["swarm", "leave", "--force"], nodeEnv);
  try {
    const pid = Number((await Deno.readTextFile(PIDFILE)).trim());
    if (pid > 0) {
      Deno.kill(pid, "SIGTERM");
      for (let i = 0; i < 100; i++) {
        if (!(await tryRun("kill", ["-0", String(pid)]) !== null)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch {
    // No engine running.
  }
  await tryRun("ip", ["netns", "del", NETNS]);
  await tryRun("ip", ["link", "del", VETH_HOST]);
  if (managerNodeId) await tryRun("docker", ["node", "rm", "--force", managerNodeId], managerEnv());
  // Nodes of earlier runs that were never removed show up as "down".
  const down = await tryRun(
    "docker",
    ["node", "ls", "--filter", "role=worker", "-q"],
    managerEnv(),
  );
  for (const id of (down ?? "").split("\n").filter(Boolean)) {
    const state = await tryRun(
      "docker",
      ["node", "inspect", "-f", "{{.Status.State}}", id],
      managerEnv(),
    );
    if (state === "down") await tryRun("docker", ["node", "rm", "--force", id], managerEnv());
  }
}

async function execInNode(argv: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command("nsenter", {
    args: [`--net=/var/run/netns/${NETNS}`, ...argv],
    env: { ...nodeEnv, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function spawnInNode(argv: string[]): Deno.ChildProcess {
  return new Deno.Command("nsenter", {
    args: [`--net=/var/run/netns/${NETNS}`, ...argv],
    env: nodeEnv,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** The id of the manager's node listing entry with this address, or null. */
async function nodeAt(addr: string): Promise<string | null> {
  const ids = (await tryRun("docker", ["node", "ls", "-q"], managerEnv()) ?? "").split("\n");
  for (const id of ids.filter(Boolean)) {
    const a = await tryRun(
      "docker",
      ["node", "inspect", "-f", "{{.Status.Addr}}", id],
      managerEnv(),
    );
    if (a === addr) return id;
  }
  return null;
}

/** Starts the second node and loads `images` (references on the manager) into it. */
export async function startSecondNode(
  images: string[],
  opts: SecondNodeOptions = {},
): Promise<SecondNode> {
  await teardown();
  await run("ip", ["netns", "add", NETNS]);
  await run("ip", ["link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS]);
  await run("ip", ["link", "set", VETH_NS, "netns", NETNS]);
  await run("ip", ["link", "set", VETH_HOST, "master", "cumulus0"]);
  await run("ip", ["link", "set", VETH_HOST, "up"]);
  await run("ip", ["-n", NETNS, "addr", "add", `${NODE_ADDR}/24`, "dev", VETH_NS]);
  await run("ip", ["-n", NETNS, "link", "set", VETH_NS, "up"]);
  await run("ip", ["-n", NETNS, "link", "set", "lo", "up"]);
  // No default route inside: a registry pull then fails at once instead of hanging.
  await Deno.mkdir(DATA_ROOT, { recursive: true });
  // nsenter (not `ip netns exec`, which remounts /sys and breaks dockerd's cgroup checks).
  const child = new Deno.Command("nsenter", {
    args: [
      `--net=/var/run/netns/${NETNS}`,
      "dockerd",
      "--host",
      `unix://${SOCK}`,
      "--data-root",
      DATA_ROOT,
      "--exec-root",
      EXEC_ROOT,
      "--pidfile",
      PIDFILE,
      "--iptables=false",
      "--bridge=none",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  let nodeId = "";
  try {
    for (let i = 0;; i++) {
      if (await tryRun("docker", ["info", "--format", "{{.ID}}"], nodeEnv) !== null) break;
      if (i > 150) throw new Error("second engine did not answer within 30 s");
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const ref of images) {
      const id = await run("docker", ["image", "inspect", "-f", "{{.Id}}", ref], managerEnv());
      if (await tryRun("docker", ["image", "inspect", id], nodeEnv) !== null) continue;
      // docker save | docker load, streamed between the two engines.
      const save = new Deno.Command("docker", {
        args: ["save", ref],
        env: managerEnv(),
        stdout: "piped",
      }).spawn();
      const load = new Deno.Command("docker", {
        args: ["load", "-q"],
        env: nodeEnv,
        stdin: "piped",
        stdout: "null",
      }).spawn();
      await save.stdout.pipeTo(load.stdin);
      const [s, l] = await Promise.all([save.status, load.status]);
      if (!s.success || !l.success) throw new Error(`loading ${ref} into the second node failed`);
    }
    if (opts.noImages) {
      await run("docker", ["container", "prune", "-f"], nodeEnv);
      await run("docker", ["image", "prune", "-a", "-f"], nodeEnv);
    }
    if (opts.join === false) {
      return {
        nodeId: "",
        socket: SOCK,
        exec: execInNode,
        spawn: spawnInNode,
        docker: (args) => run("docker", args, nodeEnv),
        // The test may have joined it: the node it made is found by its address.
        stop: async () => teardown(await nodeAt(NODE_ADDR) ?? undefined),
      };
    }
    const token = await run("docker", ["swarm", "join-token", "-q", "worker"], managerEnv());
    await run("docker", [
      "swarm",
      "join",
      "--token",
      token,
      "--advertise-addr",
      NODE_ADDR,
      "--listen-addr",
      `${NODE_ADDR}:2377`,
      `${MANAGER_ADDR}:2377`,
    ], nodeEnv);
    nodeId = await run("docker", ["info", "--format", "{{.Swarm.NodeID}}"], nodeEnv);
    for (let i = 0;; i++) {
      const state = await tryRun(
        "docker",
        ["node", "inspect", "-f", "{{.Status.State}}", nodeId],
        managerEnv(),
      );
      if (state === "ready") break;
      if (i > 150) throw new Error(`second node not ready: ${state}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await teardown(nodeId || undefined);
    throw err;
  }
  return {
    nodeId,
    socket: SOCK,
    exec: execInNode,
    spawn: spawnInNode,
    docker: (args) => run("docker", args, nodeEnv),
    stop: () => teardown(nodeId),
  };
}
