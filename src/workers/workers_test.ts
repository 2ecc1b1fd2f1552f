import assert from "node:assert/strict";
import { AgentClient, AgentCommandError, localAgentCommand, LocalTransport } from "./mod.ts";
import { parseWorkerTargets } from "./mod.ts";

Deno.test("worker targets parse into user, host and port (22 by default)", () => {
  const t = parseWorkerTargets("gpu1=cumulus@10.0.0.5:2222,gpu2=ops@box");
  assert.deepEqual(t.get("gpu1"), { user: "cumulus", host: "10.0.0.5", port: 2222 });
  assert.deepEqual(t.get("gpu2"), { user: "ops", host: "box", port: 22 });
});

Deno.test("the local agent creates idempotently by job id and releases by job", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "cumulus-workers-" });
  try {
    const agent = new AgentClient(
      new LocalTransport({
        agentCommand: localAgentCommand(""),
        env: { CHRONOS_STATE_DIR: stateDir },
      }),
    );
    const [dev] = await agent.gpus();
    assert.ok(dev.totalMemoryBytes > 0);
    const req = { device: 0, memory: 0.5, durationS: 30, owner: "u", jobId: "j-000000000001" };
    const a = await agent.create(req);
    const b = await agent.create(req);
    assert.equal(b.id, a.id);
    assert.equal(b.existing, true);
    await assert.rejects(
      agent.create({ ...req, memory: 0.6, jobId: "j-000000000002" }),
      (e: unknown) => e instanceof AgentCommandError && e.status === 4,
    );
    assert.equal(await agent.releaseJob(req.jobId), 1);
    assert.equal(await agent.releaseJob(req.jobId), 0);
    assert.deepEqual(await agent.list(), []);
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});
