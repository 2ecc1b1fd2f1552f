import assert from "node:assert/strict";
import { mockJob } from "../core/_mock.ts";
import { ResourceExhaustedError } from "../core/mod.ts";
import {
  checkL2Request,
  jobL2Base,
  L2Access,
  L2AccessDeniedError,
  loadCheckpointSecret,
} from "./l2_access.ts";

const BASE = "cumulus/j-1/";
const req = (method: string, key: string, query: Record<string, string> = {}, headers = {}) => ({
  method,
  key,
  query,
  headers,
});

Deno.test("checkL2Request() allows the checkpoint operations under the job's prefix", () => {
  for (
    const r of [
      req("GET", `${BASE}000000000001/w.npy`),
      req("HEAD", `${BASE}000000000001/w.npy`),
      req("PUT", `${BASE}000000000001/w.npy`, {}, { "x-amz-meta-sha256": "ab" }),
      req("DELETE", `${BASE}000000000001/manifest.json`),
      req("POST", `${BASE}000000000001/w.npy`, { uploads: "" }),
      req("PUT", `${BASE}000000000001/w.npy`, { partNumber: "3", uploadId: "u" }),
      req("POST", `${BASE}000000000001/w.npy`, { uploadId: "u" }),
      req("DELETE", `${BASE}000000000001/w.npy`, { uploadId: "u" }),
      req("GET", "", {
        "list-type": "2",
        prefix: BASE,
        "encoding-type": "url",
        "continuation-token": "x+/=",
      }),
    ]
  ) checkL2Request(BASE, r);
});

Deno.test("checkL2Request() refuses other prefixes, climbing keys, bulk deletes and copies", () => {
  for (
    const r of [
      req("GET", "cumulus/j-2/000000000001/w.npy"),
      req("GET", "cumulus/j-1x/000000000001/w.npy"),
      req("PUT", `${BASE}../j-2/000000000001/w.npy`),
      req("PUT", `${BASE}a//b`),
      req("GET", "", { "list-type": "2", prefix: "cumulus/" }),
      req("GET", "", { "list-type": "2" }),
      req("POST", "", { delete: "" }),
      req("PUT", `${BASE}x`, {}, { "x-amz-copy-source": "b/cumulus/j-2/x" }),
      req("GET", `${BASE}x`, { acl: "" }),
      req("POST", `${BASE}x`, { select: "", "select-type": "2" }),
    ]
  ) assert.throws(() => checkL2Request(BASE, r), L2AccessDeniedError, JSON.stringify(r));
});

Deno.test("jobL2Base() takes the job's own prefix, else the site's, as the runtime does", () => {
  assert.equal(jobL2Base(mockJob({ id: "j-1" }), "cumulus"), "cumulus/j-1/");
  assert.equal(
    jobL2Base(mockJob({ id: "j-1", spec: { s3Prefix: "team/x" } }), "cumulus"),
    "team/x/j-1/",
  );
  assert.equal(jobL2Base(mockJob({ id: "j-1" }), ""), "cumulus/j-1/");
});

const SITE = {
  bucket: "ckpt",
  region: "us-east-1",
  endpoint: "http://127.0.0.1:9000",
  prefix: "cumulus",
  credentials: { accessKeyId: "AK", secretAccessKey: "SK" },
};

Deno.test("L2Access presigns path-style URLs for the job's prefix and refuses the rest", async () => {
  const site = SITE;
  const l2 = new L2Access(site, new Uint8Array(32));
  const job = mockJob({ id: "j-1" });
  const [url] = await l2.presign(job, [
    req("PUT", `${BASE}000000000001/w.npy`, { partNumber: "1", uploadId: "a b" }),
  ], new Date());
  const u = new URL(url);
  assert.equal(u.origin + u.pathname, "http://127.0.0.1:9000/ckpt/cumulus/j-1/000000000001/w.npy");
  assert.equal(u.searchParams.get("uploadId"), "a b");
  assert.equal(u.searchParams.get("X-Amz-Expires"), "900");
  await assert.rejects(
    l2.presign(job, [req("GET", "cumulus/j-2/x")], new Date()),
    L2AccessDeniedError,
  );
  const many = Array.from({ length: 1001 }, () => req("GET", `${BASE}x`));
  await assert.rejects(l2.presign(job, many, new Date()), ResourceExhaustedError);
  const other = new L2Access({ ...site, bucket: "" }, new Uint8Array(32));
  await assert.rejects(
    other.presign(job, [req("GET", `${BASE}x`)], new Date()),
    L2AccessDeniedError,
  );
});

Deno.test("checkpoint keys differ per job and per secret, and are stable", async () => {
  const site = SITE;
  const a = new L2Access(site, new Uint8Array(32));
  const b = new L2Access(site, new Uint8Array(32).fill(1));
  const k1 = await a.checkpointKey("j-1");
  assert.equal(k1.length, 32);
  assert.deepEqual(await a.checkpointKey("j-1"), k1);
  assert.notDeepEqual(await a.checkpointKey("j-2"), k1);
  assert.notDeepEqual(await b.checkpointKey("j-1"), k1);
});

Deno.test("loadCheckpointSecret() makes an owner-only secret once and reads it back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/checkpoint.key`;
    const first = await loadCheckpointSecret(path);
    assert.equal(first.length, 32);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.deepEqual(await loadCheckpointSecret(path), first);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
