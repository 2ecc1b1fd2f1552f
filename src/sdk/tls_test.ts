import assert from "node:assert/strict";
import { defaultCaPem } from "./tls.ts";

Deno.test("defaultCaPem() takes CUMULUS_CA_PEM, else the CUMULUS_CA_FILE file, else none", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "from-file");
    const env = (vars: Record<string, string>) => (name: string) => vars[name];
    assert.equal(defaultCaPem(env({})), undefined);
    assert.equal(defaultCaPem(env({ CUMULUS_CA_FILE: file })), "from-file");
    assert.equal(defaultCaPem(env({ CUMULUS_CA_PEM: "pem", CUMULUS_CA_FILE: file })), "pem");
    assert.throws(() => defaultCaPem(env({ CUMULUS_CA_FILE: `${file}.missing` })));
  } finally {
    await Deno.remove(file);
  }
});
