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
import { writeNvidia } from "./_gpu_fixtures.ts";

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
    gpuRoot: () => "/nonexistent-gpu-root",
    findCommand: (name) => Promise.resolve(name === "runc" ? "/usr/bin/runc" : ""),
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

/** A fake host over a fixture root with two NVIDIA GPUs, `docker info`'s default runtime
 * answering `runtime()`, systemd when `systemd`; the wrapper beside the library. */
function gpuHost(
  root: string,
  opts: { systemd?: boolean; runtime?: () => string; say?: (l: string) => void } = {},
) {
  const f = fakeHost({ gpuRoot: () => root, say: opts.say ?? (() => {}) });
  f.files["/lib/cumulus-gpu-runc"] = "WRAPPER";
  const dirs = new Set<string>();
  const run = f.host.run;
  f.host.run = (argv) => {
    if (argv[0] === "install" && argv[1] === "-d") dirs.add(argv.at(-1)!);
    return argv[1] === "info" && argv[3] === "{{.DefaultRuntime}}"
      ? (f.ran.push(argv),
        Promise.resolve({ code: 0, stdout: `${(opts.runtime ?? (() => "runc"))()}\n`, stderr: "" }))
      : run(argv);
  };
  const exists = f.host.exists;
  f.host.exists = (p) =>
    p === "/run/systemd/system"
      ? Promise.resolve(opts.systemd ?? false)
      : dirs.has(p)
      ? Promise.resolve(true)
      : exists(p);
  return f;
}

async function withGpuRoot(fn: (root: string) => Promise<void>) {
  const root = await Deno.makeTempDir({ prefix: "join-gpu-root-" });
  try {
    await writeNvidia(root, [{ bus: "0000:17:00.0", minor: 0, k: 1 }, {
      bus: "0000:65:00.0",
      minor: 1,
      k: 2,
    }]);
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const GPU_ARGS = [...ARGS, "--user", "root", "--docker-config", "/tmp/w/daemon.json"];

Deno.test("join() on a GPU machine with a login that is not root refuses before registering", async () => {
  await withGpuRoot(async (root) => {
    const f = gpuHost(root);
    const e = await failure(join(parseJoinArgs(ARGS)!, f.host));
    assert.equal(e.failure, "usage");
    assert.match(e.message, /nvidia GPUs found: the agent must run as root.*--user root/);
    assert.equal(f.registered.length, 0);
    assert.deepEqual(Object.keys(f.files).filter((k) => k.startsWith("/opt")), []);
    // No wrapper to install: refused too, naming --gpu-runtime.
    const g = gpuHost(root);
    delete g.files["/lib/cumulus-gpu-runc"];
    const w = await failure(join(parseJoinArgs(GPU_ARGS)!, g.host));
    assert.match(w.message, /no cumulus-gpu-runc at \/lib\/cumulus-gpu-runc.*--gpu-runtime/);
    assert.equal(g.registered.length, 0);
    // --no-gpu-runtime: joins as on a CPU machine, daemon.json untouched.
    const lines: string[] = [];
    const n = gpuHost(root, { say: (l) => lines.push(l) });
    await join(parseJoinArgs([...ARGS, "--no-gpu-runtime"])!, n.host);
    assert.ok(lines.includes("gpu: runtime wrapper not installed (--no-gpu-runtime)"));
    assert.ok(!Object.keys(n.files).some((k) => k.includes("daemon.json")));
  });
});

Deno.test("join() on a GPU machine installs cumulus-gpu-runc as Docker's default runtime, once", async () => {
  await withGpuRoot(async (root) => {
    const lines: string[] = [];
    const f = gpuHost(root, { say: (l) => lines.push(l) });
    f.files["/tmp/w/daemon.json"] = '{"log-driver": "journald"}\n';
    const key = "ssh-ed25519 KEY1 cumulus-orchestrator";
    f.host.register = () => Promise.resolve({ ...ANSWER, orchestratorSshKey: key });
    await join(parseJoinArgs([...GPU_ARGS, "--service-mode", "systemd"])!, f.host);
    assert.equal(f.files["/opt/cumulus/bin/cumulus-gpu-runc"], "WRAPPER");
    const cfg = JSON.parse(f.files["/tmp/w/daemon.json"]);
    assert.equal(cfg["log-driver"], "journald");
    assert.equal(cfg["default-runtime"], "cumulus");
    assert.equal(cfg["no-new-privileges"], true);
    assert.deepEqual(cfg.runtimes.cumulus, {
      path: "/opt/cumulus/bin/cumulus-gpu-runc",
      runtimeArgs: ["--cumulus-grants=/run/cumulus/gpu-grants", "--cumulus-runc=/usr/bin/runc"],
    });
    for (const d of ["/run/cumulus", "/run/cumulus/gpu-grants", "/run/cumulus/mps"]) {
      assert.ok(f.ran.some((a) => a.join(" ") === `install -d -m 0700 -o root ${d}`), d);
    }
    assert.ok(lines.includes(
      "gpu: cumulus-gpu-runc (2 nvidia GPU(s) found) installed at /opt/cumulus/bin/cumulus-gpu-runc",
    ));
    // Not the engine's own config: said, no restart.
    assert.ok(lines.some((l) => l.startsWith("gpu: note: restart dockerd")));
    assert.ok(!f.ran.some((a) => a[0] === "systemctl" && a.includes("docker")));
    // The agent (forced command and daemon) uses the grants and MPS directories.
    const gpuEnv =
      "CUMULUS_GPU_GRANTS_DIR=/run/cumulus/gpu-grants CUMULUS_MPS_DIR=/run/cumulus/mps";
    assert.ok(f.files["/home/cumulus/.ssh/authorized_keys"].includes(`${gpuEnv} /opt/cumulus/bin`));
    assert.ok(f.files["/etc/systemd/system/cumulus-agent.service"].includes(
      "Environment=CUMULUS_GPU_GRANTS_DIR=/run/cumulus/gpu-grants\nEnvironment=CUMULUS_MPS_DIR=",
    ));

    // A second run: the same files, nothing created.
    const before = { ...f.files };
    lines.length = 0;
    f.ran.length = 0;
    await join(parseJoinArgs([...GPU_ARGS, "--service-mode", "none"])!, f.host);
    assert.deepEqual(f.files, before);
    assert.ok(!f.ran.some((a) => a[0] === "install"));
    assert.ok(
      lines.some((l) => l.startsWith("gpu: cumulus-gpu-runc (2 nvidia GPU(s) found) already")),
    );
    assert.ok(lines.includes(
      "gpu: cumulus-gpu-runc already Docker's default runtime in /tmp/w/daemon.json",
    ));
  });
});

Deno.test("join() restarts the engine (systemd) for the wrapper before the Swarm join, once", async () => {
  await withGpuRoot(async (root) => {
    let runtime = "runc";
    const f = gpuHost(root, { systemd: true, runtime: () => runtime });
    const run = f.host.run;
    f.host.run = (argv) => {
      if (argv.join(" ") === "systemctl restart docker") runtime = "cumulus";
      return run(argv);
    };
    const args = [...ARGS, "--user", "root"];
    await join(parseJoinArgs(args)!, f.host);
    assert.ok("/etc/docker/daemon.json" in f.files);
    const restart = f.ran.findIndex((a) => a.join(" ") === "systemctl restart docker");
    const swarm = f.ran.findIndex((a) => a[1] === "swarm");
    assert.ok(restart >= 0 && restart < swarm, "restarted before the Swarm join");
    f.ran.length = 0;
    await join(parseJoinArgs(args)!, f.host);
    assert.ok(!f.ran.some((a) => a[0] === "systemctl" && a[2] === "docker"), "no second restart");
    // An engine that comes back without the runtime: one clear error.
    const g = gpuHost(root, { systemd: true });
    const e = await failure(join(parseJoinArgs(args)!, g.host));
    assert.equal(e.failure, "docker");
    assert.match(e.message, /came back with default runtime runc, not cumulus/);
  });
});

Deno.test("join() on a machine without GPUs writes no daemon.json", async () => {
  const lines: string[] = [];
  const f = fakeHost({ say: (l) => lines.push(l) });
  await join(parseJoinArgs(ARGS)!, f.host);
  assert.ok(!Object.keys(f.files).some((k) => k.includes("daemon.json") || k.includes("gpu-runc")));
  assert.ok(lines.some((l) => l.startsWith("gpu: no GPU found")));
  assert.ok(!f.ran.some((a) => a[0] === "systemctl"));
});
