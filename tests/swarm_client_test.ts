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
