import assert from "node:assert/strict";
import { presignUrl, uriEncode } from "./sigv4.ts";

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
