import assert from "node:assert/strict";
import { InvalidUrlError } from "./errors.ts";
import { parseOrchestratorEndpoint, parseOrchestratorUrl } from "./url.ts";

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
  ["ftp://host:1", /grpcs:\/\/ or https:\/\//],
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

const endpoints: Array<[string, { target: string; host: string; tls: boolean }]> = [
  ["grpc://h:1", { target: "h:1", host: "h", tls: false }],
  ["h:1", { target: "h:1", host: "h", tls: false }],
  ["grpcs://h:7000", { target: "h:7000", host: "h", tls: true }],
  ["GRPCS://h", { target: "h:50051", host: "h", tls: true }],
  ["https://cumulus.example", {
    target: "cumulus.example:443",
    host: "cumulus.example",
    tls: true,
  }],
  ["https://cumulus.example:8443/", {
    target: "cumulus.example:8443",
    host: "cumulus.example",
    tls: true,
  }],
  ["grpcs://[::1]:9", { target: "[::1]:9", host: "[::1]", tls: true }],
];
for (const [input, want] of endpoints) {
  Deno.test(`parseOrchestratorEndpoint parses ${JSON.stringify(input)}`, () => {
    assert.deepEqual(parseOrchestratorEndpoint(input), want);
  });
}
