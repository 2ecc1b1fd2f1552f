import assert from "node:assert/strict";
import { prepareDataDir } from "./data_dir.ts";

const mode = async (p: string) => (await Deno.stat(p)).mode! & 0o777;

Deno.test("prepareDataDir makes a new data dir owner-only", async () => {
  const parent = await Deno.makeTempDir();
  try {
    const root = `${parent}/data`;
    const dirs = await prepareDataDir(root);
    assert.equal(await mode(root), 0o700);
    for (const d of Object.values(dirs)) assert.equal(await mode(d), 0o700, d);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("prepareDataDir closes a world-readable data dir an older version left and empties tmp", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.chmod(root, 0o755);
    await Deno.mkdir(`${root}/logs`, { mode: 0o755 });
    await Deno.writeTextFile(`${root}/jobs.db`, "x", { mode: 0o644 });
    await Deno.chmod(`${root}/jobs.db`, 0o644);
    await Deno.mkdir(`${root}/tmp`);
    await Deno.writeTextFile(`${root}/tmp/upload-1`, "partial");
    const dirs = await prepareDataDir(root);
    assert.equal(await mode(root), 0o700);
    assert.equal(await mode(dirs.logs), 0o700);
    assert.equal(await mode(`${root}/jobs.db`), 0o600);
    assert.deepEqual([...Deno.readDirSync(dirs.tmp)], []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
