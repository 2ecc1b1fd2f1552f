import assert from "node:assert/strict";
import { isRegistryAddress, pinnedRef, registryOf } from "./image_ref.ts";

const D = "sha256:" + "ab".repeat(32);

Deno.test("registryOf() finds the host Docker would contact", () => {
  const cases: Array<[string, string | null]> = [
    ["cumulus-job:latest", null],
    ["cumulus-job", null],
    ["library/python:3.11", null],
    ["team/train@" + D, null],
    ["localhost/x", "localhost"],
    ["localhost:5000/x:1", "localhost:5000"],
    ["198.18.0.1:5000/cumulus-job@" + D, "198.18.0.1:5000"],
    ["ghcr.io/org/img:tag", "ghcr.io"],
    ["sha256:" + "cd".repeat(32), null],
  ];
  for (const [ref, want] of cases) assert.equal(registryOf(ref), want, ref);
});

Deno.test("isRegistryAddress() accepts host[:port] only", () => {
  for (const ok of ["198.18.0.1:5000", "registry.example.com", "localhost:5000", "r-1.x:443"]) {
    assert.ok(isRegistryAddress(ok), ok);
  }
  for (const bad of ["", "http://r:5000", "r:0", "r:70000", "r:5000/x", "-r", "r;rm", "r:"]) {
    assert.ok(!isRegistryAddress(bad), bad);
  }
});

Deno.test("pinnedRef() joins registry, repository and digest", () => {
  assert.equal(pinnedRef("198.18.0.1:5000", "cumulus-job", D), `198.18.0.1:5000/cumulus-job@${D}`);
  assert.throws(() => pinnedRef("198.18.0.1:5000", "Cumulus", D), RangeError);
  assert.throws(() => pinnedRef("198.18.0.1:5000", "cumulus-job", "sha256:xyz"), RangeError);
  assert.throws(() => pinnedRef("http://x", "cumulus-job", D), RangeError);
});
