import assert from "node:assert/strict";
import {
  join,
  joinCommand,
  type JoinHost,
  parseJoinArgs,
  type Ran,
  withOrchestratorKey,
} from "./join.ts";
import { JoinError } from "./join_error.ts";

const ARGS = ["--orchestrator", "10.0.0.1:50051", "--token", "cuj_x"];
const ANSWER = {
  swarmJoinToken: "SWMTKN-1-abc",
  managerAddress: "10.0.0.1:2377",
  orchestratorSshKey: "",
};

/** A machine where everything works unless `over` says otherwise; records what ran. */
function fakeHost(over: Partial<JoinHost> & { swarm?: string } = {}) {
  const ran: string[][] = [];
  const registered: Record<string, string>[] = [];
  const files: Record<string, string> = {
    "/etc/ssh/ssh_host_ed25519_key.pub": "ssh-ed25519 AAAA root@w\n",
  };
  const host: JoinHost = {
    uid: () => 0,
    run: (argv): Promise<Ran> => {
      ran.push(argv);
      if (argv[1] === "info" && argv[3] === "{{json .Swarm}}") {
        return Promise.resolve({
          code: 0,
          stdout: over.swarm ?? '{"LocalNodeState":"inactive","NodeID":""}',
          stderr: "",
        });
      }
      if (argv[1] === "info") return Promise.resolve({ code: 0, stdout: "node1\n", stderr: "" });
      return Promise.resolve({ code: 0, stdout: "", stderr: "" });
    },
    readTextFile: (path) =>
      path in files ? Promise.resolve(files[path]) : Promise.reject(new Deno.errors.NotFound(path)),
    writePrivateFile: (path, text) => {
      files[path] = text;
      return Promise.resolve();
    },
    containerHint: () => Promise.resolve(""),
    hostname: () => "w1",
    localAddressTo: () => Promise.resolve("10.0.0.7"),
    register: (_o, req) => {
      registered.push(req);
      return Promise.resolve(ANSWER);
    },
    say: () => {},
    ...over,
  };
  return { host, ran, registered, files };
}

async function failure(p: Promise<unknown>): Promise<JoinError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof JoinError) return err;
    throw err;
  }
  throw new Error("the join succeeded");
}

Deno.test("join() registers, then runs docker swarm join as argv", async () => {
  const f = fakeHost();
  assert.equal(await join(parseJoinArgs(ARGS)!, f.host), "node1");
  assert.deepEqual(f.registered, [{
    joinToken: "cuj_x",
    name: "w1",
    sshTarget: "cumulus@10.0.0.7:22",
    sshHostKey: "ssh-ed25519 AAAA root@w",
  }]);
  assert.deepEqual(f.ran[1], [
    "docker",
    "swarm",
    "join",
    "--token",
    "SWMTKN-1-abc",
    "10.0.0.1:2377",
  ]);
});

Deno.test("join() on a machine already in a swarm registers and skips the Swarm join", async () => {
  const f = fakeHost({ swarm: '{"LocalNodeState":"active","NodeID":"n9"}' });
  assert.equal(await join(parseJoinArgs([...ARGS, "--name", "gpu-9"])!, f.host), "n9");
  assert.equal(f.registered[0].name, "gpu-9");
  assert.ok(!f.ran.some((a) => a[1] === "swarm"));
});

Deno.test("join() stops with one line and its own exit code for each failure", async () => {
  const noDocker = (): Promise<Ran> =>
    Promise.resolve({ code: 1, stdout: "", stderr: "Cannot connect to the Docker daemon\n" });
  const table: [string, Partial<JoinHost>, string, RegExp][] = [
    ["not root", { uid: () => 1000 }, "root", /must run as root/],
    ["no engine", { run: noDocker }, "docker", /no Docker engine reachable \(Cannot connect/],
    [
      "in a container",
      { run: noDocker, containerHint: () => Promise.resolve("/.dockerenv exists") },
      "docker",
      /itself a container \(\/\.dockerenv exists\)/,
    ],
    [
      "no host key",
      { readTextFile: () => Promise.reject(new Error("nope")) },
      "local",
      /--host-key/,
    ],
    [
      "token refused",
      { register: () => Promise.reject(new JoinError("token", "join token x was already used")) },
      "token",
      /already used/,
    ],
    [
      "orchestrator away",
      { localAddressTo: () => Promise.reject(new Error("connection refused")) },
      "orchestrator",
      /cannot reach the orchestrator at 10.0.0.1:50051/,
    ],
  ];
  for (const [name, over, kind, re] of table) {
    const f = fakeHost(over);
    const e = await failure(join(parseJoinArgs(ARGS)!, f.host));
    assert.equal(e.failure, kind, name);
    assert.match(e.message, re, name);
    assert.ok(!e.message.includes("\n"), name);
    assert.ok(!f.ran.some((a) => a[1] === "swarm"), `${name}: no swarm join`);
  }
  const swarmDown = fakeHost({
    run: (argv) =>
      Promise.resolve(
        argv[1] === "swarm"
          ? { code: 1, stdout: "", stderr: "Error: timeout dialing 10.0.0.1:2377\n" }
          : { code: 0, stdout: "{}", stderr: "" },
      ),
  });
  const e = await failure(join(parseJoinArgs(ARGS)!, swarmDown.host));
  assert.equal(e.failure, "swarm");
  assert.match(e.message, /cannot join the swarm at 10.0.0.1:2377: Error: timeout/);
});

Deno.test("joinCommand() prints progress, or one error line and a non-zero code", async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t) };
  assert.equal(await joinCommand(ARGS, io, fakeHost().host), 0);
  assert.ok(out.some((l) => l.startsWith("join: swarm: joined 10.0.0.1:2377 as node node1")));
  assert.ok(!out.join("").includes("SWMTKN"), "the Swarm token is never printed");
  assert.equal(await joinCommand(["--token", "t"], io, fakeHost().host), 2);
  assert.equal(err.at(-1), "cumulus-agent join: --orchestrator URL is required\n");
  assert.equal(await joinCommand(ARGS, io, fakeHost({ uid: () => 5 }).host), 11);
  assert.equal(await joinCommand(["--bogus"], io, fakeHost().host), 2);
});

Deno.test("join() --authorized-keys writes the orchestrator's key with the forced command, once", async () => {
  const f = fakeHost({
    register: () =>
      Promise.resolve({ ...ANSWER, orchestratorSshKey: "ssh-ed25519 KEY1 cumulus-orchestrator" }),
  });
  f.files["/home/cumulus/.ssh/authorized_keys"] = "ssh-rsa OTHER me\nssh-ed25519 KEY1 old-line\n";
  const o = parseJoinArgs([...ARGS, "--authorized-keys", "/home/cumulus/.ssh/authorized_keys"])!;
  await join(o, f.host);
  const want = "ssh-rsa OTHER me\n" +
    'command="/opt/cumulus/bin/cumulus-agent ssh-dispatch",no-pty,no-port-forwarding,' +
    "no-agent-forwarding,no-X11-forwarding ssh-ed25519 KEY1 cumulus-orchestrator\n";
  assert.equal(f.files["/home/cumulus/.ssh/authorized_keys"], want);
  assert.equal(
    withOrchestratorKey(want, "ssh-ed25519 KEY1 x", "/opt/cumulus/bin/cumulus-agent"),
    null,
  );
  assert.throws(() => withOrchestratorKey("", "rm -rf /", "/a"), JoinError);
  assert.throws(() => parseJoinArgs([...ARGS, "--agent-path", "agent; rm"]), /absolute path/);
});
