import assert from "node:assert/strict";
import { gpuOomOutcome, isGpuOutOfMemory, isMpsClientTerminated } from "./gpu_oom.ts";

const GIB = 1024 ** 3;

Deno.test("isGpuOutOfMemory() recognises each framework's out-of-memory error", () => {
  const cases: Array<[string, boolean]> = [
    [
      "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 30.00 GiB. GPU 0 has a " +
      "total capacity of 79.19 GiB of which 9.31 GiB is free.",
      true,
    ],
    ["RuntimeError: CUDA error: out of memory CUDA_ERROR_OUT_OF_MEMORY", true],
    ["cupy.cuda.runtime.CUDARuntimeError: cudaErrorMemoryAllocation: out of memory", true],
    ["tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating", true],
    ["jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying", true],
    ["HIP out of memory. Tried to allocate 2.00 GiB", true],
    ["MemoryError: out of memory", false], // host memory, not the GPU
    ["step 10 loss 0.25", false],
    ["Killed", false],
  ];
  for (const [line, want] of cases) assert.equal(isGpuOutOfMemory([line]), want, line);
});

Deno.test("gpuOomOutcome() names the partition a fractional job exceeded", () => {
  const got = gpuOomOutcome(
    ["loading", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 30.00 GiB"],
    1,
    { bytes: 20 * GIB, count: 1, whole: false },
  );
  assert.deepEqual(got, {
    reason: "exceeded its 20.0 GiB GPU partition (CUDA out of memory); exited with code 1",
    reasonCode: "GPU_MEMORY_EXCEEDED",
  });
});

Deno.test("gpuOomOutcome() says whole GPUs ran out, and leaves other failures alone", () => {
  assert.equal(
    gpuOomOutcome(["CUDA out of memory"], 1, { bytes: 80 * GIB, count: 2, whole: true })?.reason,
    "ran out of the memory of its 2 whole GPUs (80.0 GiB each) (CUDA out of memory); exited with code 1",
  );
  assert.equal(
    gpuOomOutcome(["CUDA out of memory"], 1, { bytes: 0, count: 1, whole: false })?.reason,
    "exceeded its GPU partition (CUDA out of memory); exited with code 1",
  );
  assert.equal(
    gpuOomOutcome(["ValueError: bad input"], 1, { bytes: GIB, count: 1, whole: false }),
    null,
  );
  assert.equal(
    gpuOomOutcome(["CUDA out of memory"], 0, { bytes: GIB, count: 1, whole: false }),
    null,
  );
});

Deno.test("isMpsClientTerminated() tells an MPS server fault from the job's own failure", () => {
  assert.ok(isMpsClientTerminated([
    "RuntimeError: CUDA error: the MPS client has been terminated by the server " +
    "(cudaErrorMpsClientTerminated)",
  ]));
  assert.ok(isMpsClientTerminated(["CUDA_ERROR_MPS_CLIENT_TERMINATED"]));
  assert.ok(!isMpsClientTerminated(["RuntimeError: CUDA error: an illegal memory access"]));
  assert.ok(!isMpsClientTerminated(["CUDA out of memory"]));
});
