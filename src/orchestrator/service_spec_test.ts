import assert from "node:assert/strict";
import { mockJob } from "../core/_mock.ts";
import { buildServiceRequest, type ServiceContext } from "./service_spec.ts";

const ctx: ServiceContext = {
  imageId: "sha256:abc",
  instanceId: "orch-1",
  orchestratorAddress: "127.0.0.1:50051",
  stopGracePeriodS: 10,
  now: 1_000,
};

Deno.test("a placed fractional job names its partition and device, on its node", () => {
  const req = buildServiceRequest(mockJob(), ctx);
  assert.equal(req.env.CUMULUS_PARTITION_ID, "p-000000000001");
  assert.equal(req.env.CUMULUS_PARTITION_IDS, "p-000000000001");
  assert.equal(req.env.CUMULUS_GPU_DEVICE, "0");
  assert.equal(req.env.CUMULUS_GPU_DEVICES, "0");
  assert.equal(req.env.CUMULUS_GPU_MEMORY, "0.5");
  assert.ok(req.constraints.includes("node.id==n1"));
});

Deno.test("a whole-GPU group names every partition and device, in GPU order", () => {
  const job = mockJob({
    spec: { gpuMemory: 1, gpuCount: 2 },
    gpuDevice: 3,
    gpuDevices: [3, 1],
    partitionId: "p-000000000003",
    partitionIds: ["p-000000000003", "p-000000000001"],
  });
  const env = buildServiceRequest(job, ctx).env;
  assert.equal(env.CUMULUS_PARTITION_IDS, "p-000000000003,p-000000000001");
  assert.equal(env.CUMULUS_GPU_DEVICES, "3,1");
  assert.equal(env.CUMULUS_GPU_COUNT, "2");
  assert.equal(env.CUMULUS_GPU_MEMORY, "1");
});

Deno.test("a job placed without partitions names none (the runtime wrapper hands it no GPU)", () => {
  const env = buildServiceRequest(mockJob({ partitionId: "", deadlineMs: 0 }), ctx).env;
  // Set empty, so that an image's own ENV cannot name partitions for the wrapper.
  assert.equal(env.CUMULUS_PARTITION_IDS, "");
  assert.equal(env.CUMULUS_PARTITION_ID, "");
  // The job id is always set: the wrapper treats the container as a Cumulus job.
  assert.equal(env.CUMULUS_JOB_ID, "j-0123456789ab");
});

Deno.test("an L2 job gets the bucket and its prefix but no S3 keys", () => {
  const s3 = {
    bucket: "ckpt",
    region: "us-east-1",
    endpoint: "http://127.0.0.1:9",
    prefix: "cumulus",
  };
  const env = buildServiceRequest(mockJob({ spec: { s3Prefix: "team/a" } }), { ...ctx, s3 }).env;
  assert.equal(env.CUMULUS_S3_BUCKET, "ckpt");
  assert.equal(env.CUMULUS_S3_PREFIX, "team/a");
  assert.equal(env.CUMULUS_S3_PRESIGN, "1");
  assert.deepEqual(Object.keys(env).filter((k) => k.startsWith("AWS_")), []);
});

Deno.test("a job runs as the job uid with its limits, a read-only root and tmpfs where it writes", () => {
  const job = mockJob({ spec: { cpu: 1.5, memoryBytes: 1024 ** 3 }, bundleBytes: 10 });
  const req = buildServiceRequest(job, ctx);
  assert.equal(req.user, "1000:1000");
  assert.equal(req.cpu, 1.5);
  assert.equal(req.memoryBytes, 1024 ** 3);
  assert.equal(req.readOnlyRoot, true);
  assert.deepEqual(req.tmpfs?.map((t) => [t.target, t.sizeBytes]), [
    ["/tmp", 1024 ** 3],
    ["/workspace", 1024 ** 3],
  ]);
  assert.equal(req.env.CUMULUS_WORKDIR, "/workspace");
  assert.equal(req.env.HOME, "/tmp");
});

Deno.test("a plain command gets only /tmp; the spec's HOME and image user are kept", () => {
  const job = mockJob({ spec: { env: { HOME: "/data" }, imageUser: true } });
  const req = buildServiceRequest(job, ctx);
  assert.equal(req.user, undefined);
  assert.deepEqual(req.tmpfs?.map((t) => t.target), ["/tmp"]);
  assert.equal(req.env.HOME, "/data");
});

Deno.test("a record stored before resources existed gets the isolation's defaults", () => {
  const isolation = { user: "2000:2000", readOnlyRoot: false, cpuDefault: 2, memoryDefault: 1e9 };
  const req = buildServiceRequest(mockJob(), { ...ctx, isolation });
  assert.equal(req.user, "2000:2000");
  assert.equal(req.cpu, 2);
  assert.equal(req.memoryBytes, 1e9);
  assert.equal(req.readOnlyRoot, false);
  assert.deepEqual(req.tmpfs, []);
});
