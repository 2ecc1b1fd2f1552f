import assert from "node:assert/strict";
import { startS3 } from "./helpers/s3.ts";
import { startS3Gate } from "../src/orchestrator/mod.ts";
import { presignUrl } from "../src/orchestrator/sigv4.ts";

// s3rver's built-in keys: the orchestrator signs with them, s3rver itself checks nothing.
const CREDS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "S3 gate: relays presigned requests to a real S3 server and refuses the rest",
  ...opts,
  fn: async () => {
    const s3 = await startS3();
    const refusals: string[] = [];
    const gate = await startS3Gate({
      hostname: "127.0.0.1",
      upstream: s3.endpoint,
      credentials: CREDS,
      log: (m) => refusals.push(m),
    });
    const sign = (method: string, path: string, headers: Record<string, string> = {}) =>
      presignUrl({
        method,
        url: `${gate.origin}/${s3.bucket}/${path}`,
        region: "us-east-1",
        expiresS: 900,
        now: new Date(),
        headers,
      }, CREDS);
    try {
      // A presigned PUT with a signed metadata header, then a presigned GET of it.
      const body = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);
      const put = await fetch(await sign("PUT", "cumulus/job-a/x.bin", { "x-amz-meta-k": "v" }), {
        method: "PUT",
        body,
        headers: { "x-amz-meta-k": "v" },
      });
      assert.equal(put.status, 200, await put.text());
      const get = await fetch(await sign("GET", "cumulus/job-a/x.bin"));
      assert.equal(get.status, 200);
      assert.equal(get.headers.get("x-amz-meta-k"), "v");
      assert.deepEqual(new Uint8Array(await get.arrayBuffer()), body);
      // The same object straight from s3rver, unsigned: it would answer, hence the gate.
      const direct = await fetch(`${s3.endpoint}/${s3.bucket}/cumulus/job-a/x.bin`);
      assert.equal(direct.status, 200);
      await direct.body?.cancel();
      // Through the gate: unsigned, another key with job a's signature, another method.
      const unsigned = await fetch(`${gate.origin}/${s3.bucket}/cumulus/job-a/x.bin`);
      assert.equal(unsigned.status, 403);
      assert.match(await unsigned.text(), /AccessDenied.*not a presigned URL/s);
      const url = await sign("GET", "cumulus/job-a/x.bin");
      const moved = await fetch(url.replace("job-a", "job-b"));
      assert.equal(moved.status, 403);
      await moved.body?.cancel();
      const del = await fetch(url, { method: "DELETE" });
      assert.equal(del.status, 403);
      await del.body?.cancel();
      const listing = await fetch(`${gate.origin}/${s3.bucket}?list-type=2`);
      assert.equal(listing.status, 403);
      await listing.body?.cancel();
      assert.equal(refusals.length, 4);
      // A signed PUT streamed without a length (chunked) is refused before the server sees it.
      const chunked = await fetch(await sign("PUT", "cumulus/job-a/y.bin"), {
        method: "PUT",
        body: new Blob([body]).stream(),
      });
      assert.equal(chunked.status, 411);
      await chunked.body?.cancel();
      assert.ok(refusals.every((r) => !r.includes("X-Amz-Signature")), "a log carried a URL");
      // The object is still there: nothing refused reached the server.
      const again = await fetch(await sign("HEAD", "cumulus/job-a/x.bin"), { method: "HEAD" });
      assert.equal(again.status, 200);
      assert.equal(again.headers.get("content-length"), String(body.length));
    } finally {
      await gate.close();
      await s3.stop();
    }
  },
});
