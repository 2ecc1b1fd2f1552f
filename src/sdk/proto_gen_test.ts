import assert from "node:assert/strict";
import { buildSdkProtoDescriptor } from "../../scripts/gen-sdk-proto.ts";
import { CUMULUS_PROTO_DESCRIPTOR } from "./proto_gen.ts";
import { cumulusServiceClient } from "./rpc.ts";

Deno.test("proto_gen.ts is current with proto/cumulus.proto (else run scripts/gen-sdk-proto.ts)", () => {
  assert.deepEqual(CUMULUS_PROTO_DESCRIPTOR, buildSdkProtoDescriptor());
});

Deno.test("the generated descriptor yields the Cumulus service with camelCase fields", () => {
  const Ctor = cumulusServiceClient();
  assert.deepEqual(Object.keys(Ctor.service).sort(), [
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
  assert.equal(Ctor.service.SubmitJob.requestStream, true);
  assert.equal(Ctor.service.WatchJob.responseStream, true);
  // Round trip through the real serializers: camelCase names and enum
  // strings must survive, as the orchestrator's proto-loader produces them.
  const watch = Ctor.service.WatchJob;
  const wire = watch.responseSerialize({
    lines: [{ seq: 7, stream: "STDERR", timeMs: 1700000000000, text: "x" }],
    job: { id: "j-0123456789ab", state: "RUNNING", gpuMemory: 1, spec: { gpuMemory: 0.5 } },
  });
  const back = watch.responseDeserialize(wire) as {
    lines: { seq: number; stream: string; timeMs: number }[];
    job: { state: string; spec: { gpuMemory: number } };
  };
  assert.equal(back.lines[0].seq, 7);
  assert.equal(back.lines[0].stream, "STDERR");
  assert.equal(back.lines[0].timeMs, 1700000000000);
  assert.equal(back.job.state, "RUNNING");
  assert.equal(back.job.spec.gpuMemory, 0.5);
});
