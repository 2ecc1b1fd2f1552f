import assert from "node:assert/strict";
import { presignUrl, type PresignVerdict, uriEncode, verifyPresignedUrl } from "./sigv4.ts";

// AWS's documented example ("Authenticating Requests: Using Query Parameters
// (AWS Signature Version 4)", Amazon S3 API reference).
const EXAMPLE_CREDS = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};

Deno.test("presignUrl() reproduces AWS's documented presigned GET", async () => {
  const url = await presignUrl({
    method: "GET",
    url: "https://examplebucket.s3.amazonaws.com/test.txt",
    region: "us-east-1",
    expiresS: 86400,
    now: new Date("2013-05-24T00:00:00Z"),
  }, EXAMPLE_CREDS);
  assert.equal(
    url,
    "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
      "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
      "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
      "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
  );
});

Deno.test("presignUrl() signs the query and the named headers", async () => {
  const base = {
    method: "PUT",
    url: "http://127.0.0.1:9000/bucket/p/job/000000000001/w.npy?partNumber=2&uploadId=abc",
    region: "us-east-1",
    expiresS: 900,
    now: new Date("2026-12-06T00:00:00Z"),
  };
  const plain = await presignUrl(base, EXAMPLE_CREDS);
  assert.match(plain, /&partNumber=2&uploadId=abc&X-Amz-Signature=/);
  const other = await presignUrl(
    { ...base, url: base.url.replace("partNumber=2", "partNumber=3") },
    EXAMPLE_CREDS,
  );
  assert.notEqual(sig(plain), sig(other));
  const meta = await presignUrl({ ...base, headers: { "x-amz-meta-sha256": "ab" } }, EXAMPLE_CREDS);
  assert.match(meta, /X-Amz-SignedHeaders=host%3Bx-amz-meta-sha256/);
  assert.notEqual(sig(plain), sig(meta));
});

Deno.test("uriEncode() keeps unreserved characters and encodes the rest as UTF-8", () => {
  assert.equal(uriEncode("a-b_c.d~e"), "a-b_c.d~e");
  assert.equal(uriEncode("a/b c"), "a%2Fb%20c");
  assert.equal(uriEncode("a/b", true), "a/b");
  assert.equal(uriEncode("é"), "%C3%A9");
});

function sig(url: string): string {
  return new URL(url).searchParams.get("X-Amz-Signature") ?? "";
}

Deno.test("verifyPresignedUrl() accepts what presignUrl() made and refuses any change", async () => {
  const now = new Date("2026-12-06T12:00:00Z");
  const url = new URL(
    await presignUrl({
      method: "PUT",
      url:
        "http://172.17.0.1:4000/b/cumulus/job-1/ckpt/step-1/model.pt?partNumber=2&uploadId=u%2B1",
      region: "us-east-1",
      expiresS: 900,
      now,
      headers: { "x-amz-meta-sha256": "abc" },
    }, EXAMPLE_CREDS),
  );
  const headers = new Headers({ host: url.host, "x-amz-meta-sha256": "abc" });
  const check = (m: string, u: URL, h: Headers, at = now) =>
    verifyPresignedUrl(m, u, h, EXAMPLE_CREDS, at);
  assert.deepEqual(await check("PUT", url, headers), { ok: true });
  // Within the window, and not after it.
  assert.deepEqual(await check("PUT", url, headers, new Date(now.getTime() + 899_000)), {
    ok: true,
  });
  const reason = async (p: Promise<PresignVerdict>) => {
    const v = await p;
    return v.ok ? "ok" : v.reason;
  };
  assert.equal(
    await reason(check("PUT", url, headers, new Date(now.getTime() + 901_000))),
    "the presigned URL has expired",
  );
  assert.equal(await reason(check("GET", url, headers)), "signature mismatch");
  const other = new URL(url.href.replace("job-1", "job-2"));
  assert.equal(await reason(check("PUT", other, headers)), "signature mismatch");
  const moreQuery = new URL(url.href + "&versionId=1");
  assert.equal(await reason(check("PUT", moreQuery, headers)), "signature mismatch");
  const meta = new Headers({ host: url.host, "x-amz-meta-sha256": "evil" });
  assert.equal(await reason(check("PUT", url, meta)), "signature mismatch");
  const noMeta = new Headers({ host: url.host });
  assert.equal(
    await reason(check("PUT", url, noMeta)),
    "signed header x-amz-meta-sha256 is missing",
  );
  const elsewhere = new Headers({ host: "127.0.0.1:4000", "x-amz-meta-sha256": "abc" });
  assert.equal(await reason(check("PUT", url, elsewhere)), "signature mismatch");
  const unsigned = new URL("http://172.17.0.1:4000/b/cumulus/job-2/x");
  assert.match(await reason(check("GET", unsigned, headers)), /^not a presigned URL/);
  const otherKey = { accessKeyId: EXAMPLE_CREDS.accessKeyId, secretAccessKey: "x".repeat(40) };
  assert.equal(
    await reason(verifyPresignedUrl("PUT", url, headers, otherKey, now)),
    "signature mismatch",
  );
  assert.equal(
    await reason(verifyPresignedUrl("PUT", url, headers, { ...otherKey, accessKeyId: "K" }, now)),
    "unknown access key",
  );
});
