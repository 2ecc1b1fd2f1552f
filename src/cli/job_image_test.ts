import assert from "node:assert/strict";
import { registryImage } from "./job_image.ts";

Deno.test("registryImage() names REGISTRY/cumulus-job:latest and refuses what is not a registry", () => {
  assert.equal(registryImage("10.0.0.5:5000"), "10.0.0.5:5000/cumulus-job:latest");
  assert.equal(registryImage("registry.example/team/"), "registry.example/team/cumulus-job:latest");
  for (const bad of ["", "http://r:5000", "r:5000/a b", "r;rm -rf /", "r:99999999"]) {
    assert.throws(() => registryImage(bad), /--image-from: must be a registry host\[:port\]/, bad);
  }
});
