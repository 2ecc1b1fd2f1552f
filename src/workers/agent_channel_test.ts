import assert from "node:assert/strict";
import { AgentClient, localAgentCommand, LocalAgentError, LocalChannelTransport } from "./mod.ts";

/** A fresh Chronos state dir for the real agent, removed after `fn`. */
async function withStateDir(fn: (env: Record<string, string>) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-channel-" });
  try {
    await fn({ CHRONOS_STATE_DIR: dir });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function alive(pid: number): boolean {
  try {
    // State field of /proc/<pid>/stat: a zombie (Z) is as good as gone.
    return !/\) Z /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

/** A stand-in agent that says it is ready and then runs `script` on its input (sh). */
function fakeAgent(script: string): string[] {
  return ["sh", "-c", `echo '{"ready":true}'; ${script}`, "fake-agent"];
}

Deno.test("LocalChannelTransport runs many commands, concurrent ones too, in one agent process", async () => {
  await withStateDir(async (env) => {
    const t = new LocalChannelTransport({ agentCommand: localAgentCommand(""), env });
    try {
      const agent = new AgentClient(t);
      const [dev] = await agent.gpus();
      assert.ok(dev.totalMemoryBytes > 0);
      const jobs = Array.from({ length: 8 }, (_, i) => `j-00000000000${i}`);
      // Answers are matched by id: each create gets its own partition back.
      const made = await Promise.all(
        jobs.map((jobId) =>
          agent.create({ device: 0, memory: 0.1, durationS: 30, owner: "u", jobId })
        ),
      );
      assert.deepEqual(made.map((p) => p.jobId), jobs);
      assert.equal(new Set(made.map((p) => p.id)).size, 8);
      assert.equal((await agent.list()).length, 8);
      for (const j of jobs) assert.equal(await agent.releaseJob(j), 1);
      assert.equal(t.starts, 1, "one agent process served every command");
    } finally {
      await t.close();
    }
  });
});

Deno.test("LocalChannelTransport starts the agent again after it died", async () => {
  await withStateDir(async (env) => {
    // Killed this soon after its start, the child counts as crash-looping: a short backoff.
    const t = new LocalChannelTransport({
      agentCommand: localAgentCommand(""),
      env,
      backoffMs: 10,
    });
    try {
      const agent = new AgentClient(t);
      assert.deepEqual(await agent.list(), []);
      const first = await t.pid();
      assert.ok(first !== null && alive(first));
      Deno.kill(first, "SIGKILL");
      // Until the exit is noticed a command may fail (agent unreachable); then a new child serves.
      let listed: unknown = null;
      for (let i = 0; i < 100 && listed === null; i++) {
        listed = await agent.list().catch(async (e) => {
          assert.ok(e instanceof LocalAgentError, String(e));
          await new Promise((r) => setTimeout(r, 20));
          return null;
        });
      }
      assert.deepEqual(listed, []);
      assert.equal(t.starts, 2);
      const second = await t.pid();
      assert.ok(second !== null && second !== first && alive(second));
    } finally {
      await t.close();
    }
  });
});

Deno.test("LocalChannelTransport.close() ends the agent process; later commands fail", async () => {
  await withStateDir(async (env) => {
    const t = new LocalChannelTransport({ agentCommand: localAgentCommand(""), env });
    await new AgentClient(t).list();
    const pid = (await t.pid())!;
    assert.ok(alive(pid));
    await t.close();
    assert.equal(alive(pid), false, "no agent process left after close()");
    await assert.rejects(new AgentClient(t).list(), LocalAgentError);
  });
});

Deno.test("LocalChannelTransport reports an agent that cannot start, and backs off before retrying", async () => {
  const t = new LocalChannelTransport({
    agentCommand: ["sh", "-c", "echo 'libchronos.so: not found' >&2; exit 7", "agent"],
    backoffMs: 60_000,
  });
  try {
    await assert.rejects(
      t.run(["cumulus-agent", "gpus", "--json"]),
      (e: unknown) =>
        e instanceof LocalAgentError &&
        /exited with code 7: libchronos\.so: not found/.test(e.message),
    );
    // Within the backoff: the same reason at once, no new process.
    await assert.rejects(
      t.run(["cumulus-agent", "gpus", "--json"]),
      (e: unknown) =>
        e instanceof LocalAgentError &&
        /^local agent exited with code 7: .*not found \(the local agent is started again in \d+ ms\)$/
          .test(e.message),
    );
    assert.equal(t.starts, 1);
  } finally {
    await t.close();
  }
  const missing = new LocalChannelTransport({ agentCommand: ["/nonexistent/cumulus-agent"] });
  await assert.rejects(
    missing.run(["cumulus-agent", "gpus"]),
    (e: unknown) => e instanceof LocalAgentError && /cannot run \/nonexistent/.test(e.message),
  );
  await missing.close();
});

Deno.test("LocalChannelTransport times out a command that gets no answer and replaces the agent", async () => {
  const t = new LocalChannelTransport({ agentCommand: fakeAgent("cat >/dev/null") });
  try {
    await assert.rejects(
      t.run(["cumulus-agent", "partition", "list", "--json"], { timeoutMs: 300 }),
      (e: unknown) =>
        e instanceof LocalAgentError && /partition list did not finish in time/.test(e.message),
    );
    // The wedged child was killed: the next command gets a new one.
    await assert.rejects(t.run(["cumulus-agent", "gpus"], { timeoutMs: 300 }), LocalAgentError);
    assert.equal(t.starts, 2);
  } finally {
    await t.close();
  }
});

Deno.test("LocalChannelTransport backs off from an agent that dies right after it started", async () => {
  const t = new LocalChannelTransport({ agentCommand: fakeAgent("exit 9"), backoffMs: 60_000 });
  try {
    // The first command meets the crash; the next ones get the reason at once, no new child.
    await assert.rejects(t.run(["cumulus-agent", "gpus"]), LocalAgentError);
    await assert.rejects(
      t.run(["cumulus-agent", "gpus"]),
      (e: unknown) =>
        e instanceof LocalAgentError &&
        /^local agent exited with code 9 \(the local agent is started again in \d+ ms\)$/.test(
          e.message,
        ),
    );
    assert.equal(t.starts, 1);
  } finally {
    await t.close();
  }
});
