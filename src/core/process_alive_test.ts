import assert from "node:assert/strict";
import { processAlive } from "./process_alive.ts";

Deno.test("processAlive: this process lives; a child that exited and was reaped does not", async () => {
  assert.equal(processAlive(Deno.pid), true);
  const child = new Deno.Command("true", { stdout: "null", stderr: "null" }).spawn();
  await child.status;
  assert.equal(processAlive(child.pid), false);
});
