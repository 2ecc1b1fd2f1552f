import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import tar from "tar-stream";
import { BundleError, BundleTooLargeError } from "./errors.ts";
import { packBundle, type PackProgress, selectBundleEntries } from "./bundle.ts";

/** Writes a tree of files: a key ending in "/" is a directory. */
async function makeTree(files: Record<string, string | Uint8Array>): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "cumulus-bundle-" });
  for (const [path, content] of Object.entries(files)) {
    if (path.endsWith("/")) {
      await Deno.mkdir(`${root}/${path}`, { recursive: true });
      continue;
    }
    const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
    if (dir) await Deno.mkdir(`${root}/${dir}`, { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(`${root}/${path}`, content);
    else await Deno.writeFile(`${root}/${path}`, content);
  }
  return root;
}

interface Extracted {
  type: string;
  mode: number;
  data: Uint8Array;
}

/** Reads a gzipped tar back with tar-stream's extractor. */
async function extract(gz: Uint8Array): Promise<Map<string, Extracted>> {
  const out = new Map<string, Extracted>();
  const ex = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on("entry", (header, stream, next) => {
      const parts: Uint8Array[] = [];
      stream.on("data", (c: unknown) => parts.push(c as Uint8Array));
      stream.on("end", () => {
        const size = parts.reduce((n, p) => n + p.length, 0);
        const data = new Uint8Array(size);
        let o = 0;
        for (const p of parts) {
          data.set(p, o);
          o += p.length;
        }
        out.set(header.name, { type: header.type ?? "file", mode: header.mode ?? 0, data });
        next();
      });
    });
    ex.on("finish", () => resolve());
    ex.on("error", reject);
  });
  ex.end(gunzipSync(gz));
  await done;
  return out;
}

const text = (d: Uint8Array) => new TextDecoder().decode(d);

Deno.test("ignore rules: root, nested, negation, .cumulusignore and .git", async () => {
  const root = await makeTree({
    ".gitignore": "*.log\nbuild/\nsecret.txt\n",
    ".cumulusignore": "!secret.txt\ndata/raw/\n",
    "main.py": "print('hi')\n",
    "app.log": "noise",
    "build/out.bin": "x",
    "secret.txt": "needed by the job",
    ".git/HEAD": "ref: refs/heads/main\n",
    "sub/.gitignore": "*.tmp\n!keep.log\n",
    "sub/a.tmp": "t",
    "sub/keep.log": "kept: nested negation wins",
    "sub/other.log": "ignored by the root rule",
    "sub/deeper/b.tmp": "t",
    "sub/deeper/c.txt": "c",
    "data/raw/huge.csv": "1,2,3",
    "data/clean.csv": "4,5,6",
    "empty/": "",
  });
  try {
    const sel = await selectBundleEntries(root);
    const paths = sel.entries.map((e) => e.type === "directory" ? `${e.path}/` : e.path);
    assert.deepEqual(paths, [
      ".cumulusignore",
      ".gitignore",
      "data/",
      "data/clean.csv",
      "empty/",
      "main.py",
      "secret.txt",
      "sub/",
      "sub/.gitignore",
      "sub/deeper/",
      "sub/deeper/c.txt",
      "sub/keep.log",
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("symlinks and other special files are skipped and reported", async () => {
  const root = await makeTree({ "real.txt": "r" });
  try {
    await Deno.symlink(`${root}/real.txt`, `${root}/link.txt`);
    const sel = await selectBundleEntries(root);
    assert.deepEqual(sel.entries.map((e) => e.path), ["real.txt"]);
    assert.deepEqual(sel.skipped, ["link.txt"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("packBundle round-trips through tar-stream with content, dirs and modes", async () => {
  const big = new Uint8Array(300_000).map((_, i) => (i * 7919) & 0xff);
  const longName = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(50)}.txt`;
  const root = await makeTree({
    "run.sh": "#!/bin/sh\necho hi\n",
    "data/big.bin": big,
    [longName]: "long path",
    ".gitignore": "ignored.txt\n",
    "ignored.txt": "no",
  });
  try {
    await Deno.chmod(`${root}/run.sh`, 0o755);
    await Deno.chmod(`${root}/data/big.bin`, 0o600);
    const packed = await packBundle(root);
    assert.equal(packed.files, 4);
    assert.equal(packed.rawBytes, big.length + 18 + 9 + 12);
    const entries = await extract(packed.bytes);
    assert.equal(text(entries.get("run.sh")!.data), "#!/bin/sh\necho hi\n");
    assert.equal(entries.get("run.sh")!.mode, 0o755);
    assert.equal(entries.get("data/big.bin")!.mode, 0o600);
    assert.deepEqual(entries.get("data/big.bin")!.data, big);
    assert.equal(entries.get("data")!.type, "directory");
    assert.equal(text(entries.get(longName)!.data), "long path");
    assert.ok(!entries.has("ignored.txt"));
    for (const name of entries.keys()) {
      assert.ok(!name.startsWith("/") && !name.startsWith("./") && !name.includes(".."), name);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("packBundle reports progress up to the totals", async () => {
  const root = await makeTree({ "a.bin": new Uint8Array(200_000), "b.txt": "b" });
  try {
    const seen: PackProgress[] = [];
    const packed = await packBundle(root, { onProgress: (p) => seen.push(p) });
    const last = seen[seen.length - 1];
    assert.equal(last.files, 2);
    assert.equal(last.totalFiles, 2);
    assert.equal(last.bytesIn, 200_001);
    assert.equal(last.totalBytesIn, 200_001);
    assert.ok(seen.length >= 3, `only ${seen.length} progress events`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].bytesIn >= seen[i - 1].bytesIn);
    assert.ok(packed.bytes.length > 0);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("packBundle over the limit names the size, the limit and the largest files", async () => {
  // Random bytes do not compress, so the compressed size passes the limit.
  const noise = (n: number) => crypto.getRandomValues(new Uint8Array(n));
  const root = await makeTree({
    "weights.bin": noise(60_000),
    "notes/big.dat": noise(30_000),
    "small.txt": "s",
  });
  try {
    await assert.rejects(packBundle(root, { maxBytes: 50_000 }), (err: unknown) => {
      assert.ok(err instanceof BundleTooLargeError);
      assert.equal(err.code, "RESOURCE_EXHAUSTED");
      assert.equal(err.limit, 50_000);
      assert.ok(err.bytes > 50_000);
      assert.deepEqual(err.largestFiles.map((f) => f.path), [
        "weights.bin",
        "notes/big.dat",
        "small.txt",
      ]);
      assert.match(err.message, /limit of 48\.8 KiB/);
      assert.match(err.message, /weights\.bin \(58\.6 KiB\)/);
      assert.ok(!err.message.includes("\n"));
      return true;
    });
    // The same tree fits under a higher limit.
    const ok = await packBundle(root, { maxBytes: 200_000 });
    assert.equal(ok.files, 3);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("packBundle of a missing directory fails with INVALID_ARGUMENT", async () => {
  await assert.rejects(packBundle("/nonexistent/cumulus-test"), (err: unknown) => {
    assert.ok(err instanceof BundleError);
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.match(err.message, /nonexistent\/cumulus-test/);
    return true;
  });
});

Deno.test("packBundle stops when aborted", async () => {
  const root = await makeTree({ "a.bin": new Uint8Array(2_000_000) });
  try {
    const ctl = new AbortController();
    const p = packBundle(root, {
      signal: ctl.signal,
      onProgress: (p) => {
        if (p.bytesIn > 0) ctl.abort(new Error("stop"));
      },
    });
    await assert.rejects(p, /stop/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
