/**
 * The Docker adapter against the real engine: how its answers map onto
 * Cumulus's error codes.
 */
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../src/core/mod.ts";
import { connectDocker, SwarmClient } from "../src/swarm/mod.ts";
import { SWARM_SOCKET } from "./helpers/stack.ts";

Deno.test("resolveImage(): an id for an image, null for a missing one, INVALID_ARGUMENT for a bad reference", async () => {
  const swarm = new SwarmClient(connectDocker(SWARM_SOCKET));
  assert.match((await swarm.resolveImage("cumulus-job:latest")) ?? "", /^sha256:[0-9a-f]{64}$/);
  assert.equal(await swarm.resolveImage("cumulus-no-such-image:never"), null);
  // The engine answers 400 for a reference it refuses: the caller's input, not an outage.
  await assert.rejects(
    swarm.resolveImage("Bad/Name"),
    (e: Error) =>
      e instanceof InvalidArgumentError && /repository name must be lowercase/.test(e.message),
  );
});

Deno.test({
  name: "containerEvents(): a service's container start, then its die with the exit code",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const swarm = new SwarmClient(connectDocker(SWARM_SOCKET));
    const image = await swarm.resolveImage("cumulus-job:latest");
    assert.ok(image, "the job image exists");
    const label = `cumulus.test-events=${crypto.randomUUID().slice(0, 8)}`;
    const [key, value] = label.split("=");
    const stop = new AbortController();
    const events = await swarm.containerEvents(label, stop.signal);
    const serviceId = await swarm.createService({
      name: `cumulus-events-test-${value}`,
      image,
      command: ["sh", "-c", "exit 7"],
      env: {},
      labels: { [key]: value },
      constraints: [],
      stopGracePeriodS: 1,
    });
    const seen: Array<[string, number | null, string]> = [];
    const timer = setTimeout(() => stop.abort(), 60_000);
    try {
      for await (const ev of events) {
        seen.push([ev.action, ev.exitCode, ev.labels["com.docker.swarm.service.id"]]);
        if (ev.action === "die") break;
      }
    } finally {
      clearTimeout(timer);
      stop.abort();
      await swarm.removeService(serviceId);
    }
    assert.deepEqual(seen, [["start", null, serviceId], ["die", 7, serviceId]]);
  },
});
