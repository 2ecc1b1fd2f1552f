import assert from "node:assert/strict";
import { InvalidUrlError } from "./errors.ts";
import { parseOrchestratorUrl } from "./url.ts";

const good: Array<[string, string]> = [
  ["127.0.0.1:50051", "127.0.0.1:50051"],
  ["grpc://10.0.0.5:7000", "10.0.0.5:7000"],
  ["GRPC://host:1/", "host:1"],
  ["gpu-box", "gpu-box:50051"],
  ["  localhost:9000 ", "localhost:9000"],
  ["[::1]:6000", "[::1]:6000"],
  ["grpc://[::1]", "[::1]:50051"],
];
for (const [input, want] of good) {
  Deno.test(`parseOrchestratorUrl accepts ${JSON.stringify(input)}`, () => {
    assert.equal(parseOrchestratorUrl(input), want);
  });
}

const bad: Array<[string, RegExp]> = [
  ["", /empty/],
  ["http://host:1", /unsupported scheme http/],
  ["host:0", /invalid port/],
  ["host:70000", /invalid port/],
  ["host:abc", /invalid port/],
  ["::1:80", /brackets/],
  ["grpc://host:1/path", /expected host:port/],
  ["user@host:1", /expected host:port/],
  [":50051", /missing host/],
  ["ho st:1", /invalid host/],
];
for (const [input, why] of bad) {
  Deno.test(`parseOrchestratorUrl rejects ${JSON.stringify(input)}`, () => {
    assert.throws(() => parseOrchestratorUrl(input), (err: unknown) => {
      assert.ok(err instanceof InvalidUrlError);
      assert.equal(err.code, "INVALID_ARGUMENT");
      assert.match(err.message, why);
      return true;
    });
  });
}
