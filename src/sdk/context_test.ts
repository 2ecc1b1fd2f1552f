import assert from "node:assert/strict";
import { currentJob } from "./context.ts";

function lookup(vars: Record<string, string>) {
  return (name: string) => vars[name];
}

Deno.test("currentJob() is null outside a job", () => {
  assert.equal(currentJob(lookup({})), null);
});

Deno.test("currentJob() reads a whole-GPU group's partitions, devices and GPU UUIDs", () => {
  const job = currentJob(lookup({
    CUMULUS_JOB_ID: "j-0123456789ab",
    CUMULUS_ATTEMPT: "2",
    CUMULUS_GPU_MEMORY: "1",
    CUMULUS_GPU_COUNT: "2",
    CUMULUS_PARTITION_ID: "p-000000000001",
    CUMULUS_PARTITION_IDS: "p-000000000001,p-000000000002",
    CUMULUS_GPU_DEVICE: "4",
    CUMULUS_GPU_DEVICES: "4,5",
    CUMULUS_GPU_UUIDS: "GPU-a,GPU-b",
    CUMULUS_GPU_MEMORY_BYTES: "85017493504",
    CUMULUS_DEADLINE_MS: "1700000000000",
  }));
  assert.deepEqual(job, {
    jobId: "j-0123456789ab",
    attempt: 2,
    gpuMemory: 1,
    gpuCount: 2,
    gpuMemoryBytes: 85017493504,
    partitionId: "p-000000000001",
    partitionIds: ["p-000000000001", "p-000000000002"],
    device: 4,
    devices: [4, 5],
    gpuUuids: ["GPU-a", "GPU-b"],
    deadlineMs: 1700000000000,
  });
});

Deno.test("currentJob() on a worker without device access: a partition, no UUIDs", () => {
  const job = currentJob(lookup({
    CUMULUS_JOB_ID: "j-0123456789ab",
    CUMULUS_GPU_MEMORY: "0.25",
    CUMULUS_PARTITION_ID: "p-000000000001",
    CUMULUS_GPU_DEVICE: "0",
  }))!;
  assert.deepEqual(job.partitionIds, ["p-000000000001"]);
  assert.deepEqual([job.device, job.devices, job.gpuUuids, job.gpuMemoryBytes], [0, [0], [], null]);
  assert.equal(job.gpuMemory, 0.25);
});
