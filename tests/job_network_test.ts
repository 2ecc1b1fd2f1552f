/**
 * The jobs' network against the real engine (src/orchestrator/job_network.ts):
 * generations made, adopted, renewed and swept, and a service on a removed
 * generation refused with NetworkGoneError. The stale copy itself (what an
 * engine restart leaves) is made in tests/fault_docker_restart_test.ts.
 */
import assert from "node:assert/strict";
import { JobNetwork } from "../src/orchestrator/job_network.ts";
import { connectDocker, NetworkGoneError, SwarmClient } from "../src/swarm/mod.ts";
import { until } from "./helpers/faults.ts";
import { JOB_IMAGE, SWARM_SOCKET } from "./helpers/stack.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "JobNetwork: init makes generation 0, a second orchestrator adopts it, renew makes the " +
    "next once however many report it, sweep removes the old one once no service uses it",
  ...opts,
  fn: async () => {
    const swarm = new SwarmClient(connectDocker(SWARM_SOCKET));
    const base = `cumulus-test-net-${crypto.randomUUID().slice(0, 8)}`;
    const logs: string[] = [];
    const a = new JobNetwork(swarm, base, (m) => logs.push(m));
    const b = new JobNetwork(swarm, base, (m) => logs.push(m));
    const services: string[] = [];
    try {
      assert.equal(await a.init(), true);
      assert.equal(a.name, base);
      assert.equal(await b.init(), false, "the second orchestrator adopts, it makes none");
      const gen0 = (await swarm.listJobNetworks(base))[0];
      assert.equal(gen0.scope, "swarm");
      assert.equal(gen0.generation, 0);

      // A service still on generation 0 keeps it from being swept.
      const image = await swarm.resolveImage(JOB_IMAGE);
      assert.ok(image);
      services.push(
        await swarm.createService({
          name: `${base}-holder`,
          image,
          command: ["sleep", "300"],
          env: {},
          labels: {},
          constraints: [],
          stopGracePeriodS: 1,
          network: a.name,
        }),
      );

      // Three rejections at once (a restart rejects every task): one new generation.
      const renewed = await Promise.all([a.renew(gen0.id), a.renew(gen0.id), b.renew(gen0.id)]);
      assert.deepEqual(renewed, [true, true, true]);
      assert.equal(a.name, `${base}-1`);
      assert.equal(b.name, `${base}-1`, "b adopted a's generation 1 instead of making 2");
      assert.deepEqual((await swarm.listJobNetworks(base)).map((n) => n.name).sort(), [
        base,
        `${base}-1`,
      ]);
      assert.equal(await a.renew("1hn2257drrx07x8iyax4q704s"), false, "not one of ours");
      assert.ok(logs.some((l) => l.includes(`network ${base} is stale`)), logs.join("\n"));

      assert.equal(await a.sweep(), 0, "generation 0 is in use by a service");
      await swarm.removeService(services.pop()!);
      const removed = await until("generation 0 to be swept", async () => {
        const n = await a.sweep();
        return n > 0 ? n : null;
      }, 60_000);
      assert.equal(removed, 1);
      assert.deepEqual((await swarm.listJobNetworks(base)).map((n) => n.name), [`${base}-1`]);

      // b still names generation 1; made gone under it, its next service is refused by type.
      await swarm.removeNetwork(`${base}-1`);
      await assert.rejects(
        swarm.createService({
          name: `${base}-late`,
          image,
          command: ["true"],
          env: {},
          labels: {},
          constraints: [],
          stopGracePeriodS: 1,
          network: b.name,
        }),
        (e: Error) => e instanceof NetworkGoneError && e.network === `${base}-1`,
      );
      await b.refresh();
      assert.equal(b.name, base, "with none left, refresh makes generation 0 again");
    } finally {
      for (const id of services) await swarm.removeService(id).catch(() => {});
      for (const n of await swarm.listJobNetworks(base)) {
        await until(
          `network ${n.name} removed`,
          async () => await swarm.removeNetwork(n.id) ? true : null,
          30_000,
        ).catch(() => {});
      }
    }
  },
});
