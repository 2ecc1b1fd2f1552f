import assert from "node:assert/strict";
import { PushTracker } from "./image_push.ts";

Deno.test("PushTracker sums layer progress and finds the digest", () => {
  const t = new PushTracker();
  const msgs = [
    { status: "The push refers to repository [r:5000/cumulus-job]" },
    { status: "Preparing", id: "aaaaaaaaaaaa" },
    { status: "Preparing", id: "bbbbbbbbbbbb" },
    { status: "Pushing", id: "aaaaaaaaaaaa", progressDetail: { current: 100, total: 1000 } },
    { status: "Layer already exists", id: "bbbbbbbbbbbb" },
    { status: "Pushing", id: "aaaaaaaaaaaa", progressDetail: { current: 600, total: 1000 } },
  ];
  for (const m of msgs) assert.equal(t.push(m), null);
  assert.deepEqual(t.progress, { bytesDone: 600, bytesTotal: 1000, layersDone: 1, layers: 2 });
  t.push({ status: "Pushed", id: "aaaaaaaaaaaa" });
  t.push({ aux: { Digest: "sha256:" + "12".repeat(32) } });
  assert.deepEqual(t.progress, { bytesDone: 1000, bytesTotal: 1000, layersDone: 2, layers: 2 });
  assert.equal(t.digest, "sha256:" + "12".repeat(32));
});

Deno.test("PushTracker returns the engine's error text", () => {
  const t = new PushTracker();
  assert.equal(
    t.push({ error: "denied: requested access to the resource is denied" }),
    "denied: requested access to the resource is denied",
  );
});
