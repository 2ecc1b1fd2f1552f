import assert from "node:assert/strict";

// The SDK is imported by URL, where neither deno.json's import map nor files
// outside src/sdk are available: every import must be a sibling file, a
// pinned npm: package or a node: built-in.
const ALLOWED = [
  /^\.\/[a-z_]+\.ts$/,
  /^npm:(@[a-z0-9-]+\/)?[a-z0-9.-]+@\d+\.\d+\.\d+(\/[a-z0-9/._-]+)?$/,
  /^node:[a-z/_]+$/,
];

Deno.test("SDK modules import only sibling files, pinned npm: packages and node: built-ins", async () => {
  const dir = new URL("./", import.meta.url);
  let checked = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".ts") || entry.name.endsWith("_test.ts")) continue;
    const text = await Deno.readTextFile(new URL(entry.name, dir));
    const specifiers = [
      ...text.matchAll(/^\s*(?:import|export)\b[^"';]*?from\s+["']([^"']+)["']/gm),
      ...text.matchAll(/^\s*import\s+["']([^"']+)["']/gm),
      ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
    ].map((m) => m[1]);
    for (const s of specifiers) {
      assert.ok(ALLOWED.some((re) => re.test(s)), `${entry.name} imports ${s}`);
    }
    checked++;
  }
  assert.ok(checked >= 8, `only ${checked} modules checked`);
});
