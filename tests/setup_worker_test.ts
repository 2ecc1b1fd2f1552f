/**
 * scripts/setup-worker.sh on this machine, whose engine is already the Swarm manager (the
 * "already a member" path), with every system path redirected to a temp dir: run twice
 * (idempotent), the daemon it starts, the forced command it authorises (used through a real
 * sshd), and its errors for a wrong token and an unreachable manager.
 */
import assert from "node:assert/strict";
import { processAlive } from "../src/core/mod.ts";
import { SshPool } from "../src/ssh/mod.ts";
import { freePort, startSshd } from "./helpers/sshd.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SCRIPT = `${ROOT}scripts/setup-worker.sh`;
const DOCKER_HOST = Deno.env.get("DOCKER_HOST") ?? "unix:///run/cumulus-docker.sock";

async function sh(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command("bash", {
    args,
    env: { DOCKER_HOST, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function docker(args: string[]): Promise<string> {
  const r = await new Deno.Command("docker", {
    args,
    env: { DOCKER_HOST },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(r.success, new TextDecoder().decode(r.stderr));
  return new TextDecoder().decode(r.stdout).trim();
}

/** The manager address this engine's swarm advertises, and its worker token. */
async function swarm(): Promise<{ manager: string; token: string }> {
  const manager = await docker([
    "info",
    "--format",
    "{{range .Swarm.RemoteManagers}}{{.Addr}}{{end}}",
  ]);
  const token = await docker(["swarm", "join-token", "-q", "worker"]);
  return { manager, token };
}

Deno.test("setup-worker.sh --help documents its options and exit codes", async () => {
  const r = await sh([SCRIPT, "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--ssh-pubkey/);
  assert.match(r.stdout, /3 wrong join token, 4 manager unreachable/);
  const bad = await sh([SCRIPT, "only-one-arg"]);
  assert.equal(bad.code, 2);
});

Deno.test("setup-worker.sh refuses a wrong token (3) and an unreachable manager (4) with one line", async () => {
  const { manager, token } = await swarm();
  const wrongToken = token.replace(/-[0-9a-z]+$/, "-" + "0".repeat(25));
  const cases: [string, string, number, RegExp][] = [
    [manager, "not-a-token", 3, /wrong join token: not a Swarm token/],
    [manager, wrongToken, 3, /wrong join token: it is not this swarm's/],
    [`127.0.0.1:${freePort()}`, token, 4, /manager 127\.0\.0\.1:\d+ unreachable/],
  ];
  for (const [addr, tok, code, message] of cases) {
    const r = await sh([SCRIPT, addr, tok, "--prefix", "/nonexistent/never-used"]);
    assert.equal(r.code, code, r.stdout + r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});

Deno.test("setup-worker.sh run twice is idempotent; its daemon runs and its forced command serves SSH", async () => {
  const { manager, token } = await swarm();
  const sshd = await startSshd();
  const dir = await Deno.makeTempDir({ prefix: "cumulus-setup-worker-" });
  const prefix = `${dir}/opt`;
  const stateDir = `${dir}/chronos`;
  // The installed agent: this checkout's agent, behind a launcher (no build needed in the test).
  const agentSrc = `${dir}/cumulus-agent`;
  await Deno.writeTextFile(
    agentSrc,
    `#!/bin/sh\nexec '${Deno.execPath()}' run -A --config '${ROOT}deno.json' ` +
      `'${ROOT}src/agent/main.ts' "$@"\n`,
    { mode: 0o755 },
  );
  const args = [
    SCRIPT,
    manager,
    token,
    "--agent",
    agentSrc,
    "--chronos",
    `${ROOT}chronos/build/libchronos.so`,
    "--ssh-pubkey",
    `${sshd.keyPath}.pub`,
    "--user",
    "root",
    "--no-create-user",
    "--prefix",
    prefix,
    "--state-dir",
    stateDir,
    // sshd's own test-owned authorized_keys: the script replaces the helper's line for this key.
    "--authorized-keys",
    `${sshd.dir}/authorized_keys`,
    "--service-mode",
    "background",
    "--grace",
    "3",
  ];
  let supervisor = 0;
  const pool = new SshPool({ keyPath: sshd.keyPath, knownHostsPath: `${dir}/known_hosts` });
  try {
    const first = await sh(args);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stdout, /\[ok\] {3}already a member of the swarm/);
    assert.match(first.stdout, /\[done\] installed cumulus-agent/);
    assert.match(first.stdout, /\[done\] authorised the orchestrator key/);
    assert.match(first.stdout, /\[done\] started the agent daemon \(supervisor pid \d+/);
    supervisor = Number(await Deno.readTextFile(`${prefix}/run/agent.pid`));
    assert.ok(processAlive(supervisor));
    const keys = await Deno.readTextFile(`${sshd.dir}/authorized_keys`);
    assert.equal(keys.trim().split("\n").length, 1, keys);
    assert.match(
      keys,
      new RegExp(`^command="env .*${prefix}/bin/cumulus-agent ssh-dispatch",no-pty`),
    );

    const second = await sh(args);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.doesNotMatch(second.stdout, /\[done\]/);
    assert.match(second.stdout, /nothing changed: this worker was already set up/);
    assert.equal(await Deno.readTextFile(`${sshd.dir}/authorized_keys`), keys);
    assert.equal(Number(await Deno.readTextFile(`${prefix}/run/agent.pid`)), supervisor);

    // The daemon it started is the real one, on the state dir it was given.
    const log = `${prefix}/log/agent.log`;
    for (let i = 0; !(await Deno.readTextFile(log).catch(() => "")).includes("serve: pid"); i++) {
      if (i > 100) throw new Error(`daemon did not start: ${await Deno.readTextFile(log)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // The orchestrator's view: a command over SSH through the forced command it installed.
    const w = pool.runner({ host: "127.0.0.1", port: sshd.port, user: "root" });
    const created = await w.run([
      "cumulus-agent",
      "partition",
      "create",
      "0",
      "0.1",
      "60",
      "--job",
      "setup-worker-job",
      "--json",
    ]);
    assert.equal(created.code, 0, created.stderr);
    const state = await Deno.readDir(stateDir)[Symbol.asyncIterator]().next();
    assert.equal(state.done, false, "the partition went to the state dir the script set");
  } finally {
    await pool.close();
    if (supervisor > 0 && processAlive(supervisor)) {
      Deno.kill(supervisor, "SIGTERM");
      for (let i = 0; i < 50 && processAlive(supervisor); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await sshd.dispose();
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(processAlive(supervisor), false, "the supervisor stops on SIGTERM");
});

// A fresh engine in a network namespace this test creates (its own names, not second_node.ts's,
// so both can run), to take the real `docker swarm join` path.
const NS = "cumulus-swt";
const NS_ADDR = "198.18.0.7";
const NS_SOCK = "/run/cumulus-swt.sock";
const NS_PIDFILE = "/run/cumulus-swt.pid";

async function quiet(program: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(program, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  return { ok: out.success, text: new TextDecoder().decode(out.stdout).trim() };
}

async function nsTeardown(): Promise<void> {
  const node = { DOCKER_HOST: `unix://${NS_SOCK}` };
  const id = (await quiet("docker", ["info", "--format", "{{.Swarm.NodeID}}"], node)).text;
  await quiet("docker", ["swarm", "leave", "--force"], node);
  try {
    const pid = Number((await Deno.readTextFile(NS_PIDFILE)).trim());
    Deno.kill(pid, "SIGTERM");
    for (let i = 0; i < 100 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  } catch { /* not running */ }
  await quiet("ip", ["netns", "del", NS]);
  await quiet("ip", ["link", "del", "cswt-host"]);
  if (id !== "") await quiet("docker", ["node", "rm", "--force", id], { DOCKER_HOST });
}

async function nsEngine(): Promise<void> {
  await nsTeardown();
  for (
    const args of [
      ["netns", "add", NS],
      ["link", "add", "cswt-host", "type", "veth", "peer", "name", "cswt-ns"],
      ["link", "set", "cswt-ns", "netns", NS],
      ["link", "set", "cswt-host", "master", "cumulus0"],
      ["link", "set", "cswt-host", "up"],
      ["-n", NS, "addr", "add", `${NS_ADDR}/24`, "dev", "cswt-ns"],
      ["-n", NS, "link", "set", "cswt-ns", "up"],
      ["-n", NS, "link", "set", "lo", "up"],
    ]
  ) {
    const r = await quiet("ip", args);
    assert.ok(r.ok, `ip ${args.join(" ")} failed`);
  }
  const child = new Deno.Command("nsenter", {
    args: [
      `--net=/var/run/netns/${NS}`,
      "dockerd",
      "--host",
      `unix://${NS_SOCK}`,
      "--data-root",
      "/var/lib/cumulus-swt",
      "--exec-root",
      "/run/cumulus-swt-exec",
      "--pidfile",
      NS_PIDFILE,
      "--iptables=false",
      "--bridge=none",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  for (
    let i = 0;
    !(await quiet("docker", ["info"], { DOCKER_HOST: `unix://${NS_SOCK}` })).ok;
    i++
  ) {
    if (i > 150) throw new Error("the namespace's engine did not answer within 30 s");
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test("on a fresh engine, setup-worker.sh refuses a wrong token (3), joins, and a rerun changes nothing", async () => {
  const { manager, token } = await swarm();
  const dir = await Deno.makeTempDir({ prefix: "cumulus-setup-join-" });
  await Deno.writeTextFile(`${dir}/agent`, "#!/bin/sh\necho agent\n");
  await Deno.writeTextFile(`${dir}/libchronos.so`, "not really a library\n");
  const run = (tok: string) =>
    sh([
      SCRIPT,
      manager,
      tok,
      "--advertise-addr",
      NS_ADDR,
      "--agent",
      `${dir}/agent`,
      "--chronos",
      `${dir}/libchronos.so`,
      "--user",
      "root",
      "--no-create-user",
      "--prefix",
      `${dir}/opt`,
      "--state-dir",
      `${dir}/chronos`,
      "--service-mode",
      "none",
    ], { DOCKER_HOST: `unix://${NS_SOCK}` });
  try {
    await nsEngine();
    const wrong = await run(token.replace(/-[0-9a-z]+$/, "-" + "0".repeat(25)));
    assert.equal(wrong.code, 3, wrong.stdout + wrong.stderr);
    assert.match(wrong.stderr, /^setup-worker: error: wrong join token: /);
    assert.equal(wrong.stderr.trim().split("\n").length, 1, wrong.stderr);

    const joined = await run(token);
    assert.equal(joined.code, 0, joined.stdout + joined.stderr);
    assert.match(joined.stdout, /\[done\] joined the swarm at /);
    const nodeId = (await quiet("docker", ["info", "--format", "{{.Swarm.NodeID}}"], {
      DOCKER_HOST: `unix://${NS_SOCK}`,
    })).text;
    const role = await docker(["node", "inspect", "-f", "{{.Spec.Role}}", nodeId]);
    assert.equal(role, "worker");

    const rerun = await run(token);
    assert.equal(rerun.code, 0, rerun.stdout + rerun.stderr);
    assert.match(rerun.stdout, /\[ok\] {3}already a member of the swarm/);
    assert.match(rerun.stdout, /nothing changed/);
  } finally {
    await nsTeardown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("on a GPU host, setup-worker.sh makes cumulus-gpu-runc Docker's default runtime, merging daemon.json", async () => {
  const { manager, token } = await swarm();
  const dir = await Deno.makeTempDir({ prefix: "cumulus-setup-gpu-" });
  try {
    // A host with one NVIDIA GPU, as the driver shows it in /proc (a fixture tree).
    const gpuRoot = `${dir}/host`;
    await Deno.mkdir(`${gpuRoot}/proc/driver/nvidia/gpus/0000:19:00.0`, { recursive: true });
    await Deno.writeTextFile(
      `${gpuRoot}/proc/driver/nvidia/gpus/0000:19:00.0/information`,
      "Model: \t\t NVIDIA H100 80GB HBM3\nGPU UUID: \t GPU-0000\nDevice Minor: \t 0\n",
    );
    const wrapper = `${dir}/cumulus-gpu-runc`;
    await Deno.writeTextFile(wrapper, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const config = `${dir}/daemon.json`;
    await Deno.writeTextFile(config, JSON.stringify({ "log-level": "warn" }));
    const args = [
      SCRIPT,
      manager,
      token,
      "--agent",
      wrapper, // any file: this test is about the GPU runtime
      "--chronos",
      `${ROOT}chronos/build/libchronos.so`,
      "--user",
      "root",
      "--no-create-user",
      "--prefix",
      `${dir}/opt`,
      "--state-dir",
      `${dir}/chronos`,
      "--service-mode",
      "none",
      "--gpu-runtime",
      wrapper,
      "--docker-config",
      config,
      "--gpu-state-dir",
      `${dir}/run`,
    ];
    // MPS must serve jobs that run as root: an unprivileged agent is refused before any change.
    const unprivileged = args.map((a) => a === "root" ? "cumulus" : a);
    const refused = await sh(unprivileged, { CUMULUS_GPU_ROOT: gpuRoot });
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /nvidia GPUs found: the agent must run as root/);
    assert.doesNotMatch(refused.stdout, /\[done\]/);

    const first = await sh(args, { CUMULUS_GPU_ROOT: gpuRoot });
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stdout, /\[done\] installed cumulus-gpu-runc \(nvidia GPUs found\)/);
    assert.match(first.stdout, /\[done\] made cumulus-gpu-runc Docker's default runtime/);
    const cfg = JSON.parse(await Deno.readTextFile(config));
    assert.equal(cfg["log-level"], "warn", "other settings stay");
    assert.equal(cfg["default-runtime"], "cumulus");
    assert.equal(cfg["no-new-privileges"], true);
    assert.equal(cfg.runtimes.cumulus.path, `${dir}/opt/bin/cumulus-gpu-runc`);
    assert.ok(cfg.runtimes.cumulus.runtimeArgs.includes(`--cumulus-grants=${dir}/run/gpu-grants`));
    assert.match(cfg.runtimes.cumulus.runtimeArgs[1], /^--cumulus-runc=\/.*runc$/);
    // Grants are the agent's alone: nobody else may write (or read) them.
    assert.equal((await Deno.stat(`${dir}/run/gpu-grants`)).mode! & 0o777, 0o700);

    const again = await sh(args, { CUMULUS_GPU_ROOT: gpuRoot });
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /\[ok\] {3}cumulus-gpu-runc is Docker's default runtime/);
    assert.doesNotMatch(again.stdout, /gpu-runc.*\[done\]|\[done\].*gpu-runc/);

    // Without GPUs nothing about the runtime changes.
    await Deno.remove(config);
    const cpu = await sh(args, { CUMULUS_GPU_ROOT: `${dir}/empty` });
    assert.equal(cpu.code, 0, cpu.stdout + cpu.stderr);
    assert.match(cpu.stdout, /\[ok\] {3}no GPU found: jobs run without device access/);
    await assert.rejects(Deno.stat(config), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
