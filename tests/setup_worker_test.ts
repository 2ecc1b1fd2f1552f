/**
 * scripts/setup-worker.sh on this machine, whose engine is already the Swarm manager (the
 * "already a member" path), with every system path redirected to a temp dir: run twice
 * (idempotent), the daemon it starts, the forced command it authorises (used through a real
 * sshd), and its errors for a wrong token and an unreachable manager.
 */
import assert from "node:assert/strict";
import { SshPool } from "../src/ssh/mod.ts";
import { freePort } from "./helpers/process.ts";
import { startSshd } from "./helpers/sshd.ts";

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

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
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
    assert.ok(alive(supervisor));
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
    if (supervisor > 0 && alive(supervisor)) {
      Deno.kill(supervisor, "SIGTERM");
      for (let i = 0; i < 50 && alive(supervisor); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await sshd.dispose();
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(alive(supervisor), false, "the supervisor stops on SIGTERM");
});
