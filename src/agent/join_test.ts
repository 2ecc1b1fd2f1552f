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

const ARGS = [
  "--orchestrator",
  "10.0.0.1:50051",
  "--token",
  "cuj_x",
  "--agent-file",
  "/tmp/dl/cumulus-agent",
  "--service-mode",
  "none",
];
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
    "/tmp/dl/cumulus-agent": "AGENT",
    "/lib/libchronos.so": "LIB",
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
      const out = (stdout: string) => Promise.resolve({ code: 0, stdout, stderr: "" });
      if (argv[0] === "id") return out(argv[1] === "-u" ? "1001\n" : "cumulus\n");
      if (argv[0] === "getent") return out("cumulus:x:1001:1001::/home/cumulus:/bin/sh\n");
      return out("");
    },
    readTextFile: (path) =>
      path in files ? Promise.resolve(files[path]) : Promise.reject(new Deno.errors.NotFound(path)),
    writePrivateFile: (path, text) => {
      files[path] = text;
      return Promise.resolve();
    },
    readBytes: (path) =>
      Promise.resolve(path in files ? new TextEncoder().encode(files[path]) : null),
    writeFileAtomic: (path, bytes) => {
      files[path] = new TextDecoder().decode(bytes);
      return Promise.resolve();
    },
    exists: (path) =>
      Promise.resolve(path in files || path === "/run/chronos" || path === "/usr/bin/apt-get"),
    selfExecutable: () => Promise.resolve(""),
    selfLibrary: () => "/lib/libchronos.so",
    dockerHost: () => "",
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
  assert.equal(f.files["/opt/cumulus/bin/cumulus-agent"], "AGENT");
  assert.equal(f.files["/opt/cumulus/lib/libchronos.so"], "LIB");
  assert.deepEqual(f.ran.find((a) => a[1] === "swarm"), [
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
  const noAgent = fakeHost();
  const argsNoAgent = ARGS.filter((a, i) => a !== "--agent-file" && ARGS[i - 1] !== "--agent-file");
  const na = await failure(join(parseJoinArgs(argsNoAgent)!, noAgent.host));
  assert.match(na.message, /which cumulus-agent executable to install: pass --agent-file/);
  assert.equal(noAgent.registered.length, 0);
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

Deno.test("join() authorises the orchestrator's key for the user with the forced command, once", async () => {
  const f = fakeHost({
    register: () =>
      Promise.resolve({ ...ANSWER, orchestratorSshKey: "ssh-ed25519 KEY1 cumulus-orchestrator" }),
  });
  const keys = "/home/cumulus/.ssh/authorized_keys";
  f.files[keys] = "ssh-rsa OTHER me\nssh-ed25519 KEY1 old-line\n";
  await join(parseJoinArgs(ARGS)!, f.host);
  const forced = "env CUMULUS_CHRONOS_PATH=/opt/cumulus/lib CHRONOS_STATE_DIR=/run/chronos " +
    "/opt/cumulus/bin/cumulus-agent ssh-dispatch";
  const want = "ssh-rsa OTHER me\n" +
    `command="${forced}",no-pty,no-port-forwarding,` +
    "no-agent-forwarding,no-X11-forwarding ssh-ed25519 KEY1 cumulus-orchestrator\n";
  assert.equal(f.files[keys], want);
  assert.ok(f.ran.some((a) => a.join(" ") === `chown cumulus: ${keys}`));
  // The login's ~/.ssh too (made by root, read by sshd as the login).
  assert.ok(f.ran.some((a) => a.join(" ") === "chown cumulus: /home/cumulus/.ssh"));
  assert.equal(withOrchestratorKey(want, "ssh-ed25519 KEY1 x", forced), null);
  assert.throws(() => withOrchestratorKey("", "rm -rf /", "/a"), JoinError);
  assert.throws(() => parseJoinArgs([...ARGS, "--prefix", "/opt/x; rm"]), /absolute plain path/);
  assert.throws(() => parseJoinArgs([...ARGS, "--user", "a b"]), /not a user name/);
  assert.throws(() => parseJoinArgs([...ARGS, "--service-mode", "cron"]), /service-mode/);
});

Deno.test("join() installs the agent and libchronos.so, and a second run changes nothing", async () => {
  const lines: string[] = [];
  const f = fakeHost({ say: (l) => lines.push(l) });
  await join(parseJoinArgs(ARGS)!, f.host);
  assert.ok(lines.includes("install: cumulus-agent installed at /opt/cumulus/bin/cumulus-agent"));
  assert.ok(lines.includes("install: libchronos.so installed at /opt/cumulus/lib/libchronos.so"));
  const before = { ...f.files };
  lines.length = 0;
  // The machine has joined: its engine is in the swarm now.
  const again = fakeHost({ say: (l) => lines.push(l), swarm: '{"LocalNodeState":"active"}' });
  Object.assign(again.files, before);
  await join(parseJoinArgs(ARGS)!, again.host);
  assert.deepEqual(again.files, before);
  for (const step of ["install: cumulus-agent already", "install: libchronos.so already"]) {
    assert.ok(lines.some((l) => l.startsWith(step)), `${step}: ${lines.join("\n")}`);
  }
  assert.ok(lines.some((l) => l.includes("already in a swarm")));
  assert.ok(!again.ran.some((a) => ["useradd", "usermod", "install"].includes(a[0])));
  // An updated agent replaces the old one.
  const newer = fakeHost({ say: (l) => lines.push(l) });
  Object.assign(newer.files, before, { "/tmp/dl/cumulus-agent": "AGENT2" });
  await join(parseJoinArgs(ARGS)!, newer.host);
  assert.equal(newer.files["/opt/cumulus/bin/cumulus-agent"], "AGENT2");
  assert.ok(lines.includes("install: cumulus-agent updated at /opt/cumulus/bin/cumulus-agent"));
});

Deno.test("join() installs Docker only with --install-docker, after the token is accepted", async () => {
  let installed = false;
  const base = fakeHost();
  const run = (argv: string[]): Promise<Ran> => {
    if (argv[0] === "docker" && argv[1] === "info" && !installed) {
      return Promise.resolve({ code: 1, stdout: "", stderr: "Cannot connect\n" });
    }
    if (argv.includes("docker.io")) installed = true;
    return base.host.run(argv);
  };
  const without = fakeHost({ run });
  const e = await failure(join(parseJoinArgs(ARGS)!, without.host));
  assert.equal(e.failure, "docker");
  assert.match(e.message, /add --install-docker/);
  assert.equal(without.registered.length, 0);

  const refused = fakeHost({
    run,
    register: () => Promise.reject(new JoinError("token", "join token x was already used")),
  });
  await failure(join(parseJoinArgs([...ARGS, "--install-docker"])!, refused.host));
  assert.ok(!installed, "nothing is installed with a refused token");
  assert.ok(!("/opt/cumulus/bin/cumulus-agent" in refused.files));

  const f = fakeHost({ run });
  await join(parseJoinArgs([...ARGS, "--install-docker"])!, f.host);
  assert.ok(installed);
  assert.deepEqual(base.ran.filter((a) => a.includes("apt-get")), [
    ["apt-get", "update", "-q"],
    ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "docker.io"],
  ]);
  // In a container: refused, even with --install-docker, before registering.
  installed = false;
  const boxed = fakeHost({ run, containerHint: () => Promise.resolve("container=docker") });
  const c = await failure(join(parseJoinArgs([...ARGS, "--install-docker"])!, boxed.host));
  assert.match(c.message, /itself a container \(container=docker\).*VM-type instance/);
  assert.equal(boxed.registered.length, 0);
  assert.ok(!installed);
});

Deno.test("join() installs the registry's CA for the engine, once", async () => {
  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
  const lines: string[] = [];
  const f = fakeHost({
    say: (l) => lines.push(l),
    register: () => Promise.resolve({ ...ANSWER, registry: "10.0.0.1:5000", registryCaPem: pem }),
  });
  await join(parseJoinArgs(ARGS)!, f.host);
  const path = "/etc/docker/certs.d/10.0.0.1:5000/ca.crt";
  assert.equal(f.files[path], `${pem}\n`);
  assert.ok(
    lines.includes(`registry: 10.0.0.1:5000: CA installed for the Docker engine (${path})`),
  );
  lines.length = 0;
  await join(parseJoinArgs(ARGS)!, f.host);
  assert.ok(lines.includes(`registry: 10.0.0.1:5000: CA already trusted (${path})`));
  // No registry: said, nothing written.
  const none = fakeHost({ say: (l) => lines.push(l) });
  await join(parseJoinArgs(ARGS)!, none.host);
  assert.ok(!Object.keys(none.files).some((k) => k.includes("certs.d")));
  assert.ok(
    lines.includes("registry: none configured: job images must be on this machine already"),
  );
  // A bad address from the orchestrator is refused before anything is written under it.
  const bad = fakeHost({
    register: () => Promise.resolve({ ...ANSWER, registry: "../../etc", registryCaPem: pem }),
  });
  assert.equal((await failure(join(parseJoinArgs(ARGS)!, bad.host))).failure, "orchestrator");
});

Deno.test("join() gives the login no docker group, and notes one it already has", async () => {
  const lines: string[] = [];
  const fresh = fakeHost({ say: (l) => lines.push(l) });
  const run = fresh.host.run;
  fresh.host.run = (argv) =>
    argv[0] === "id" && argv[1] === "-u" && !fresh.ran.some((a) => a[0] === "useradd")
      ? (fresh.ran.push(argv), Promise.resolve({ code: 1, stdout: "", stderr: "no such user" }))
      : run(argv);
  await join(parseJoinArgs(ARGS)!, fresh.host);
  assert.ok(
    fresh.ran.some((a) => a.join(" ") === "useradd --system --create-home --shell /bin/sh cumulus"),
  );
  assert.ok(!fresh.ran.some((a) => a.includes("docker") && ["usermod", "gpasswd"].includes(a[0])));
  assert.ok(lines.includes("user: created the system user cumulus"));
  lines.length = 0;
  const grouped = fakeHost({ say: (l) => lines.push(l) });
  const run2 = grouped.host.run;
  grouped.host.run = (argv) =>
    argv[0] === "id" && argv[1] === "-nG"
      ? Promise.resolve({ code: 0, stdout: "cumulus docker\n", stderr: "" })
      : run2(argv);
  await join(parseJoinArgs(ARGS)!, grouped.host);
  assert.ok(lines.some((l) => /cumulus is in the docker group, which it does not need/.test(l)));
  assert.ok(!grouped.ran.some((a) => ["usermod", "gpasswd"].includes(a[0])));
});
