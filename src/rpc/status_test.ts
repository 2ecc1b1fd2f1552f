import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { InvalidArgumentError, NotFoundError, ResourceExhaustedError } from "../core/mod.ts";
import { loadCumulusProto, MAX_DETAILS_CHARS, toRpcError } from "./mod.ts";

const cases: Array<[string, unknown, grpc.status, RegExp]> = [
  [
    "invalid argument",
    new InvalidArgumentError("spec.gpu_memory", "bad"),
    grpc.status.INVALID_ARGUMENT,
    /^spec\.gpu_memory: bad$/,
  ],
  ["not found", new NotFoundError("job j-1 not found"), grpc.status.NOT_FOUND, /j-1/],
  ["exhausted", new ResourceExhaustedError("too big"), grpc.status.RESOURCE_EXHAUSTED, /too big/],
  [
    "foreign error hides its text",
    new Error("secret=xyz"),
    grpc.status.INTERNAL,
    /^internal error/,
  ],
];
for (const [name, err, code, msg] of cases) {
  Deno.test(`toRpcError maps ${name}`, () => {
    const e = toRpcError(err);
    assert.equal(e.code, code);
    assert.match(e.details, msg);
    assert.ok(!e.details.includes("secret"));
  });
}

Deno.test("toRpcError cuts a message that echoes a huge value, keeping its code", () => {
  const e = toRpcError(new NotFoundError(`job ${"x".repeat(7 * 1024 * 1024)} not found`));
  assert.equal(e.code, grpc.status.NOT_FOUND);
  assert.ok(e.details.length < MAX_DETAILS_CHARS + 100, `details: ${e.details.length} chars`);
  assert.match(e.details, /^job x+\.\.\. \(7340046 characters in all\)$/);
});

Deno.test("proto loads both services with their methods", () => {
  const p = loadCumulusProto();
  assert.deepEqual(Object.keys(p.Cumulus.service).sort(), [
    "CancelJob",
    "CreateJoinToken",
    "CreateToken",
    "DrainWorker",
    "GetJob",
    "GetResult",
    "ListJobs",
    "ListPartitions",
    "ListTokens",
    "ListWorkers",
    "RemoveWorker",
    "RevokeToken",
    "SubmitJob",
    "WatchJob",
    "WhoAmI",
  ]);
  assert.ok(p.Runtime.service.FetchBundle.responseStream);
  assert.deepEqual(Object.keys(p.WorkerJoin.service), ["JoinWorker"]);
});
