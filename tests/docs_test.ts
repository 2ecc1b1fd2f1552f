/**
 * Documentation stays complete: every config key and every CLI command is in
 * the README, and every README link to docs/ resolves.
 */
import assert from "node:assert/strict";
import { CONFIG_KEYS, DEFAULT_CONFIG } from "../src/config/mod.ts";

const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));

Deno.test("README documents every config key with its variable and default", () => {
  for (const [field, k] of Object.entries(CONFIG_KEYS)) {
    const row = readme.split("\n").find((l) => new RegExp(`^\\|\\s*\`${k.yaml}\`\\s*\\|`).test(l));
    assert.ok(row, `README lacks config key ${k.yaml}`);
    assert.ok(row.includes(`\`${k.env}\``), `README row of ${k.yaml} lacks ${k.env}`);
    const def = DEFAULT_CONFIG[field as keyof typeof DEFAULT_CONFIG];
    if (def !== "" && k.yaml !== "advertise_address") {
      assert.ok(row.includes(`\`${def}\``), `README row of ${k.yaml} lacks default ${def}`);
    }
  }
});

Deno.test("README lists every CLI command", async () => {
  const cliMod = await Deno.readTextFile(new URL("../src/cli/mod.ts", import.meta.url));
  for (
    const cmd of ["orchestrator", "run", "jobs", "logs", "kill", "workers", "agent", "version"]
  ) {
    assert.ok(cliMod.includes(cmd), `src/cli/mod.ts lacks ${cmd}`);
    assert.ok(readme.includes(`\`cumulus ${cmd}`), `README lacks cumulus ${cmd}`);
  }
});

Deno.test("README links into docs/ resolve", async () => {
  for (const m of readme.matchAll(/\]\((docs\/[^)]+)\)/g)) {
    await Deno.stat(new URL(`../${m[1]}`, import.meta.url));
  }
});
