import assert from "node:assert/strict";
import { CHRONOS_STATUS } from "../agent/mod.ts";
import {
  AgentClient,
  AgentCommandError,
  AgentExit,
  localAgentCommand,
  LocalTransport,
} from "./mod.ts";
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

Deno.test("the local agent reports its inventory and creates a group all or nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-workers-gpu-" });
  try {
    const uuid = "GPU-00000000-1111-2222-3333-444455556666";
    const info = `${dir}/root/proc/driver/nvidia/gpus/0000:19:00.0`;
    await Deno.mkdir(info, { recursive: true });
    await Deno.writeTextFile(
      `${info}/information`,
      `Model: \t\t NVIDIA H100 80GB HBM3\nGPU UUID: \t ${uuid}\nBus Location: \t 0000:19:00.0\n` +
        `Device Minor: \t 0\n`,
    );
    await Deno.mkdir(`${dir}/root/dev`);
    await Deno.writeTextFile(`${dir}/root/dev/nvidia0`, "");
    const agent = new AgentClient(
      new LocalTransport({
        agentCommand: localAgentCommand(""),
        env: {
          CHRONOS_STATE_DIR: `${dir}/state`,
          CUMULUS_GPU_ROOT: `${dir}/root`,
          CUMULUS_GPU_MAP: "0=0000:19:00.0",
          CUMULUS_GPU_GRANTS_DIR: `${dir}/grants`,
        },
      }),
    );
    const inv = await agent.inventory();
    assert.equal(inv.access, "nvidia");
    assert.equal(inv.devices[0].gpu?.uuid, uuid);
    assert.equal(inv.devices[0].pciBusId, "0000:19:00.0");
    assert.deepEqual((await agent.gpus())[0].gpu?.devices, ["/dev/nvidia0"]);

    const req = { devices: [0], memory: 1, durationS: 30, owner: "u", jobId: "j-000000000003" };
    const [p] = await agent.createGroup(req);
    assert.equal(p.jobId, req.jobId);
    assert.equal(p.existing, false);
    const grant = JSON.parse(await Deno.readTextFile(`${dir}/grants/${p.id}.json`));
    assert.equal(grant.gpu.uuid, uuid);
    assert.equal((await agent.createGroup(req))[0].existing, true);
    assert.equal(await agent.releaseJob(req.jobId), 1);
    await assert.rejects(
      agent.createGroup({ ...req, devices: [0, 5], jobId: "j-000000000004" }),
      (e: unknown) => e instanceof AgentCommandError && e.status === 2,
    );
    assert.deepEqual(await agent.list(), [], "nothing of the failed group");
    // A fractional partition without MPS installed: a grant without MPS, compute share ignored.
    const q = await agent.create({ ...req, device: 0, memory: 0.5, computeShare: 25 });
    const g2 = JSON.parse(await Deno.readTextFile(`${dir}/grants/${q.id}.json`));
    assert.equal(g2.hostIpc, false);
    assert.equal(g2.env.CUDA_MPS_ACTIVE_THREAD_PERCENTAGE, undefined);
    assert.equal(await agent.releaseJob(req.jobId), 1);
    assert.deepEqual([...Deno.readDirSync(`${dir}/grants`)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AgentExit names the agent's exit codes as Chronos numbers them", () => {
  // The agent exits with Chronos's status; its usage errors are INVALID_ARGUMENT.
  assert.equal(AgentExit.USAGE, CHRONOS_STATUS.indexOf("INVALID_ARGUMENT"));
  assert.equal(AgentExit.NOT_FOUND, CHRONOS_STATUS.indexOf("NOT_FOUND"));
  assert.equal(AgentExit.NO_CAPACITY, CHRONOS_STATUS.indexOf("NO_CAPACITY"));
  assert.equal(AgentExit.FAIR_SHARE, CHRONOS_STATUS.indexOf("FAIR_SHARE"));
  assert.ok(new AgentCommandError(AgentExit.FAIR_SHARE, "FAIR_SHARE", "x").refusedForNow);
  assert.ok(!new AgentCommandError(AgentExit.NOT_FOUND, "NOT_FOUND", "x").refusedForNow);
});
