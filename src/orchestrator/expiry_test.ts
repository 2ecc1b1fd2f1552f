import assert from "node:assert/strict";
import type { JobRecord } from "../core/mod.ts";
import { mockJob } from "../core/_mock.ts";
import { expiryDecision } from "./expiry.ts";

function job(patch: {
  resumeOnExpiry?: boolean;
  maxAttempts?: number;
  attempts?: number;
  step?: number | null;
}): JobRecord {
  const maxAttempts = patch.maxAttempts ?? 3;
  return mockJob({
    spec: {
      duration: 5,
      resume: maxAttempts > 1,
      maxAttempts,
      ...(patch.resumeOnExpiry === undefined ? {} : { resumeOnExpiry: patch.resumeOnExpiry }),
    },
    attempts: patch.attempts ?? 1,
    deadlineMs: 5000,
    lastCheckpoint: patch.step === null || patch.step === undefined
      ? null
      : { step: patch.step, tier: "l2", atMs: 3000 },
  });
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
