import assert from "node:assert/strict";
import { FailedPreconditionError } from "../core/mod.ts";
import { publicKeyLine } from "./public_key.ts";

Deno.test("publicKeyLine() derives the .pub line ssh-keygen writes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = `${dir}/id`;
    const out = await new Deno.Command("ssh-keygen", {
      args: ["-q", "-t", "ed25519", "-N", "", "-C", "x", "-f", key],
    }).output();
    assert.ok(out.success);
    const pub = (await Deno.readTextFile(`${key}.pub`)).trim().split(" ").slice(0, 2).join(" ");
    assert.equal(publicKeyLine(key), `${pub} cumulus-orchestrator`);
    assert.throws(() => publicKeyLine(`${key}.pub`), FailedPreconditionError);
    assert.throws(() => publicKeyLine(`${dir}/missing`), FailedPreconditionError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
