/**
 * The SSH transport against a real sshd on loopback, with the agent behind its forced command
 * (`cumulus-agent ssh-dispatch`) and the real libchronos.so (PoCL).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import {
  HostKeyMismatchError,
  SshPool,
  type SshPoolOptions,
  type SshTarget,
  SshTimeoutError,
  WorkerUnreachableError,
} from "../src/ssh/mod.ts";
import { type Sshd, startSshd } from "./helpers/sshd.ts";

async function withSshd(
  fn: (s: Sshd, pool: SshPool, target: SshTarget) => Promise<void>,
  opts: Partial<SshPoolOptions> = {},
): Promise<void> {
  const sshd = await startSshd();
  const pool = new SshPool({
    keyPath: sshd.keyPath,
    knownHostsPath: `${sshd.dir}/known_hosts`,
    connectTimeoutMs: 3_000,
    ...opts,
  });
  try {
    await fn(sshd, pool, { host: "127.0.0.1", port: sshd.port, user: "root" });
  } finally {
    await pool.close();
    await sshd.dispose();
  }
}

function accepted(log: string): number {
  return log.split("\n").filter((l) => l.startsWith("Accepted publickey")).length;
}

for (const persistentChannel of [true, false]) {
  const mode = persistentChannel ? "agent channel" : "exec per command";

  Deno.test(`${mode}: agent commands run through the forced command on one reused connection`, async () => {
    await withSshd(async (sshd, pool, target) => {
      const w = pool.runner(target);
      const gpus = await w.run(["cumulus-agent", "gpus", "--json"]);
      assert.equal(gpus.code, 0, gpus.stderr);
      assert.ok(JSON.parse(gpus.stdout).devices.length >= 1);
      const created = await w.run([
        "cumulus-agent",
        "partition",
        "create",
        "0",
        "0.5",
        "60",
        "--owner",
        "alice",
        "--job",
        "job-1",
        "--json",
      ]);
      assert.equal(created.code, 0, created.stderr);
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        const list = await w.run(["cumulus-agent", "partition", "list", "--json"]);
        times.push(performance.now() - t0);
        assert.equal(list.code, 0, list.stderr);
        assert.deepEqual(
          JSON.parse(list.stdout).partitions.map((p: { jobId: string }) => p.jobId),
          [
            "job-1",
          ],
        );
      }
      console.log(`${mode}: list over SSH: ${times.map((t) => t.toFixed(0)).join(", ")} ms`);
      // A command the forced command does not allow is refused by the agent, not run.
      const refused = await w.run(["cumulus-agent", "serve"]);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /not an allowed agent command/);
      const released = await w.run([
        "cumulus-agent",
        "partition",
        "release-job",
        "job-1",
        "--json",
      ]);
      assert.equal(JSON.parse(released.stdout).released.length, 1);
      assert.equal(accepted(sshd.log()), 1, "one connection for every command");
      // Trust on first use: the host key is now pinned in the known-hosts file.
      const known = Deno.readTextFileSync(`${sshd.dir}/known_hosts`);
      assert.match(known, new RegExp(`^\\[127\\.0\\.0\\.1\\]:${sshd.port} ssh-ed25519 AAAA`));
    }, { persistentChannel });
  });

  Deno.test(`${mode}: argv with shell metacharacters arrives verbatim as one argument`, async () => {
    await withSshd(async (_sshd, pool, target) => {
      const marker = `/tmp/cumulus-ssh-injected-${crypto.randomUUID()}`;
      const evil = [
        `; rm -rf /`,
        `$(touch ${marker})`,
        `\`touch ${marker}\``,
        `it's "quoted" \\ here`,
        `line one\nline two && touch ${marker}`,
        `| touch ${marker} #`,
      ];
      for (const value of evil) {
        // Chronos refuses the job id and quotes it back whole in its message.
        const r = await pool.run(target, [
          "cumulus-agent",
          "partition",
          "create",
          "0",
          "0.1",
          "5",
          "--job",
          value,
          "--json",
        ]);
        assert.equal(r.code, 2, r.stderr);
        const message: string = JSON.parse(r.stdout).error.message;
        assert.ok(message.endsWith(`got '${value}'`), `${JSON.stringify(value)} → ${message}`);
      }
      assert.equal(existsSync(marker), false, "nothing was run by a shell");
    }, { persistentChannel });
  });

  Deno.test(`${mode}: 8 concurrent creates with one job id make one partition`, async () => {
    await withSshd(async (_sshd, pool, target) => {
      const w = pool.runner(target);
      const results = await Promise.all(
        Array.from({ length: 8 }, () =>
          w.run([
            "cumulus-agent",
            "partition",
            "create",
            "0",
            "0.3",
            "60",
            "--owner",
            "bob",
            "--job",
            "same-job",
            "--json",
          ])),
      );
      for (const r of results) assert.equal(r.code, 0, r.stderr);
      const parsed = results.map((r) => JSON.parse(r.stdout));
      assert.equal(new Set(parsed.map((p) => p.id)).size, 1);
      assert.equal(parsed.filter((p) => p.existing === false).length, 1);
      const list = await w.run(["cumulus-agent", "partition", "list", "--json"]);
      assert.equal(JSON.parse(list.stdout).partitions.length, 1);
    }, { persistentChannel });
  });
}

Deno.test("a changed host key is refused with HostKeyMismatchError and the pin is kept", async () => {
  await withSshd(async (sshd, pool, target) => {
    const ok = await pool.run(target, ["cumulus-agent", "partition", "list", "--json"]);
    assert.equal(ok.code, 0, ok.stderr);
    const pinned = Deno.readTextFileSync(`${sshd.dir}/known_hosts`);
    await sshd.stop();
    await sshd.regenerateHostKey();
    await sshd.start();
    const err = await pool.run(target, ["cumulus-agent", "partition", "list", "--json"]).then(
      () => null,
      (e) => e,
    );
    assert.ok(err instanceof HostKeyMismatchError, String(err));
    assert.match(err.message, /HOST KEY MISMATCH/);
    assert.equal(Deno.readTextFileSync(`${sshd.dir}/known_hosts`), pinned);
    // A fresh pool (an orchestrator restart) refuses it too: the pin is on disk.
    const again = new SshPool({ keyPath: sshd.keyPath, knownHostsPath: `${sshd.dir}/known_hosts` });
    try {
      await assert.rejects(again.run(target, ["cumulus-agent", "gpus"]), HostKeyMismatchError);
    } finally {
      await again.close();
    }
  });
});

Deno.test("sshd down gives WorkerUnreachableError within the connect timeout, then recovers", async () => {
  await withSshd(async (sshd, pool, target) => {
    const w = pool.runner(target);
    assert.equal((await w.run(["cumulus-agent", "partition", "list"])).code, 0);
    await sshd.stop();
    const t0 = performance.now();
    const err = await w.run(["cumulus-agent", "partition", "list"]).then(() => null, (e) => e);
    const elapsed = performance.now() - t0;
    assert.ok(err instanceof WorkerUnreachableError, String(err));
    assert.ok(elapsed < 3_000 + 500, `took ${elapsed} ms`);
    console.log(`unreachable reported after ${elapsed.toFixed(0)} ms`);
    await sshd.start();
    const back = await w.run(["cumulus-agent", "partition", "list", "--json"]);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(accepted(sshd.log()), 2, "re-opened once");
  });
});

Deno.test("an address nobody serves fails as WorkerUnreachableError within the timeout", async () => {
  await withSshd(async (_sshd, pool) => {
    // 198.18.0.0/15 is reserved for benchmarks; with no route, nothing answers (or it is refused).
    const t0 = performance.now();
    await assert.rejects(
      pool.run({ host: "198.19.255.254", port: 22, user: "root" }, ["cumulus-agent", "gpus"]),
      WorkerUnreachableError,
    );
    assert.ok(performance.now() - t0 < 1_500 + 500);
  }, { connectTimeoutMs: 1_500 });
});

Deno.test("a command that outlives its timeout fails as SshTimeoutError; the pool still works", async () => {
  await withSshd(async (sshd, pool, target) => {
    // Hold Chronos's state lock, so the agent's create waits behind it.
    const holder = new Deno.Command("flock", {
      args: [`${sshd.stateDir}/chronos.lock`, "sleep", "3"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await new Promise((r) => setTimeout(r, 200));
      const t0 = performance.now();
      const err = await pool.run(target, [
        "cumulus-agent",
        "partition",
        "create",
        "0",
        "0.1",
        "60",
        "--job",
        "slow",
      ], { timeoutMs: 800 }).then(() => null, (e) => e);
      const elapsed = performance.now() - t0;
      assert.ok(err instanceof SshTimeoutError, String(err));
      assert.ok(err instanceof WorkerUnreachableError);
      assert.ok(elapsed >= 800 && elapsed < 1_500, `took ${elapsed} ms`);
    } finally {
      holder.kill("SIGKILL");
      await holder.status;
    }
    const list = await pool.run(target, ["cumulus-agent", "partition", "list", "--json"]);
    assert.equal(list.code, 0, list.stderr);
  });
});

Deno.test("an agent without 'serve --stdio' is driven with one exec per command", async () => {
  // An older agent: refuses 'serve --stdio' like any unknown command, answers the rest.
  const dir = await Deno.makeTempDir({ prefix: "cumulus-old-agent-" });
  const script = `${dir}/old-agent.sh`;
  await Deno.writeTextFile(
    script,
    `#!/bin/sh\ncase "$SSH_ORIGINAL_COMMAND" in\n  *serve*) echo "unknown command" >&2; exit 2 ;;\n` +
      `  *) printf '%s\\n' "$SSH_ORIGINAL_COMMAND" ;;\nesac\n`,
    { mode: 0o755 },
  );
  const sshd = await startSshd({}, ["/bin/sh", script]);
  const pool = new SshPool({ keyPath: sshd.keyPath, knownHostsPath: `${dir}/known_hosts` });
  try {
    const target = { host: "127.0.0.1", port: sshd.port, user: "root" };
    for (let i = 0; i < 2; i++) {
      const r = await pool.run(target, ["cumulus-agent", "partition", "list", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), ["cumulus-agent", "partition", "list", "--json"]);
    }
    const sessions = sshd.log().split("\n").filter((l) => l.startsWith("Starting session"));
    assert.equal(sessions.length, 3, "one refused channel attempt, then one exec per command");
  } finally {
    await pool.close();
    await sshd.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
