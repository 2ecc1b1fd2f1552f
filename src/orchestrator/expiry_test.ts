import assert from "node:assert/strict";
import type { JobRecord } from "../core/mod.ts";
import { expiryDecision } from "./expiry.ts";

function job(patch: {
  resumeOnExpiry?: boolean;
  maxAttempts?: number;
  attempts?: number;
  step?: number | null;
}): JobRecord {
  const maxAttempts = patch.maxAttempts ?? 3;
  return {
    id: "j-000000000001",
    seq: 1,
    spec: {
      image: "img",
      command: ["python3", "train.py"],
      function: new Uint8Array(),
      env: {},
      gpuMemory: 0.5,
      duration: 5,
      gpuCount: 1,
      constraints: [],
      resume: maxAttempts > 1,
      maxAttempts,
      ...(patch.resumeOnExpiry === undefined ? {} : { resumeOnExpiry: patch.resumeOnExpiry }),
      s3Prefix: "",
      user: "u",
      name: "",
      workdir: "",
    },
    state: "RUNNING",
    exitCode: null,
    reason: "",
    createdAt: 1,
    startedAt: 2,
    finishedAt: null,
    attempts: patch.attempts ?? 1,
    nodeId: "n",
    serviceId: "s",
    logSeq: 0,
    token: "t",
    bundleBytes: 0,
    hasResult: false,
    partitionId: "p",
    gpuDevice: 0,
    deadlineMs: 5000,
    lastCheckpoint: patch.step === null || patch.step === undefined
      ? null
      : { step: patch.step, tier: "l2", atMs: 3000 },
  };
}

Deno.test("a job that asked, checkpointed and has attempts left resumes", () => {
  const d = expiryDecision(job({ resumeOnExpiry: true, step: 40, attempts: 1, maxAttempts: 3 }));
  assert.deepEqual(d, { resume: true, note: "resuming from the checkpoint of step 40 (l2)" });
  // Step 0 is a checkpoint too.
  assert.equal(expiryDecision(job({ resumeOnExpiry: true, step: 0, attempts: 2 })).resume, true);
});

Deno.test("a job that did not ask expires as before, with nothing added to its reason", () => {
  for (const resumeOnExpiry of [undefined, false]) {
    assert.deepEqual(expiryDecision(job({ resumeOnExpiry, step: 40 })), {
      resume: false,
      note: "",
    });
  }
});

Deno.test("a job that asked but reported no checkpoint expires, saying why", () => {
  const d = expiryDecision(job({ resumeOnExpiry: true, step: null }));
  assert.equal(d.resume, false);
  assert.match(d.note, /no checkpoint/);
});

Deno.test("the last attempt expires: max_attempts bounds how long the job runs", () => {
  const d = expiryDecision(job({ resumeOnExpiry: true, step: 40, attempts: 3, maxAttempts: 3 }));
  assert.deepEqual(d, {
    resume: false,
    note: "not resumed: attempt 3 of 3 was the last",
  });
  assert.equal(
    expiryDecision(job({ resumeOnExpiry: true, step: 40, attempts: 2, maxAttempts: 3 })).resume,
    true,
  );
});
