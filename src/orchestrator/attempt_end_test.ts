import assert from "node:assert/strict";
import { mockJob } from "../core/_mock.ts";
import {
  type AttemptEnd,
  type AttemptFacts,
  decideAttemptEnd,
  type TaskOutcome,
} from "./attempt_end.ts";

const OK: TaskOutcome = { state: "SUCCEEDED", exitCode: 0, reason: "", reasonCode: "" };
const EXIT3: TaskOutcome = {
  state: "FAILED",
  exitCode: 3,
  reason: "exited with code 3",
  reasonCode: "EXIT_CODE",
};
const LOST: TaskOutcome = {
  state: "FAILED",
  exitCode: 137,
  reason: "killed by SIGKILL (container killed or removed)",
  reasonCode: "KILLED",
};
const MPS: TaskOutcome = {
  state: "FAILED",
  exitCode: 1,
  reason: "its GPU's MPS server ended it",
  reasonCode: "MPS_FAULT",
};
const OOM: TaskOutcome = {
  state: "FAILED",
  exitCode: 1,
  reason: "exceeded its 20.0 GiB GPU partition (CUDA out of memory); exited with code 1",
  reasonCode: "GPU_MEMORY_EXCEEDED",
};
const EXPIRED: TaskOutcome = {
  state: "EXPIRED",
  exitCode: 143,
  reason: "duration of 60 s is over",
  reasonCode: "EXPIRED",
};

const STALE: TaskOutcome = {
  state: "FAILED",
  exitCode: null,
  reason: "was refused by Swarm: its node kept a stale copy of the jobs' network",
  reasonCode: "NETWORK_STALE",
};

const resumable = mockJob({ attempts: 1, spec: { resume: true, maxAttempts: 3 } });
const lastAttempt = mockJob({ attempts: 3, spec: { resume: true, maxAttempts: 3 } });
const checkpointed = mockJob({
  attempts: 1,
  spec: { resume: true, maxAttempts: 2, resumeOnExpiry: true },
  lastCheckpoint: { step: 40, tier: "l1", atMs: 5_000 },
});
const refusedResult = mockJob({
  reason: "result refused: too large",
  reasonCode: "RESULT_REFUSED",
});
// A reason without the code (a waiting note, say) decides nothing.
const mereReason = mockJob({ reason: "waiting: no device with 0.5 free" });

function facts(over: Partial<AttemptFacts>): AttemptFacts {
  return {
    outcome: OK,
    cancelled: false,
    detached: false,
    expiredByUs: false,
    expiryResumed: false,
    job: mockJob(),
    ...over,
  };
}

const final = (state: string, exitCode: number | null, reason: string, reasonCode = "") => ({
  kind: "final",
  final: { state, exitCode, reason, reasonCode },
});

const cases: Array<[string, AttemptFacts, AttemptEnd | Record<string, unknown>]> = [
  ["success", facts({}), final("SUCCEEDED", 0, "")],
  [
    "a non-zero exit fails the job",
    facts({ outcome: EXIT3 }),
    final("FAILED", 3, "exited with code 3", "EXIT_CODE"),
  ],
  [
    "GPU out of memory keeps its code",
    facts({ outcome: OOM }),
    final("FAILED", 1, OOM.reason, "GPU_MEMORY_EXCEEDED"),
  ],
  [
    "a lost container resumes when attempts remain",
    facts({ outcome: LOST, job: resumable }),
    { kind: "resume", reason: `attempt 1 ${LOST.reason}; resuming`, reasonCode: "KILLED" },
  ],
  [
    "an MPS fault is the GPU's, not the job's: it resumes",
    facts({ outcome: MPS, job: resumable }),
    { kind: "resume", reason: `attempt 1 ${MPS.reason}; resuming`, reasonCode: "MPS_FAULT" },
  ],
  [
    "a non-zero exit of a resumable job is its own: it fails",
    facts({ outcome: EXIT3, job: resumable }),
    final("FAILED", 3, "exited with code 3", "EXIT_CODE"),
  ],
  [
    "a lost container on the last attempt fails",
    facts({ outcome: LOST, job: lastAttempt }),
    final("FAILED", 137, LOST.reason, "KILLED"),
  ],
  [
    "a lost container of a job that may not resume fails",
    facts({ outcome: LOST }),
    final("FAILED", 137, LOST.reason, "KILLED"),
  ],
  ["cancelled: CANCELLED stands", facts({ outcome: LOST, job: resumable, cancelled: true }), {
    kind: "leave",
  }],
  [
    "a stale network refused the task: the same attempt starts again, even the last one",
    facts({ outcome: STALE, job: lastAttempt }),
    {
      kind: "resume",
      reason: `attempt 3 ${STALE.reason}; starting it again`,
      reasonCode: "NETWORK_STALE",
      refund: true,
    },
  ],
  [
    "a stale network refused the task of a job that may not resume: it never ran, so it starts",
    facts({ outcome: STALE }),
    {
      kind: "resume",
      reason: `attempt 1 ${STALE.reason}; starting it again`,
      reasonCode: "NETWORK_STALE",
      refund: true,
    },
  ],
  ["a stale network, but cancelled: CANCELLED stands", facts({ outcome: STALE, cancelled: true }), {
    kind: "leave",
  }],
  ["cancelled and never seen ending", facts({ outcome: null, cancelled: true }), { kind: "leave" }],
  ["shutting down: detach", facts({ detached: true }), { kind: "detach" }],
  ["shutting down after a cancel: the cancel wins", facts({ detached: true, cancelled: true }), {
    kind: "leave",
  }],
  [
    "expired by the orchestrator: its record stands",
    facts({ outcome: EXPIRED, expiredByUs: true }),
    {
      kind: "leave",
    },
  ],
  [
    "expired by the orchestrator, which resumed it",
    facts({ outcome: EXPIRED, expiryResumed: true }),
    {
      kind: "continue",
    },
  ],
  [
    "expired by the agent, not asked to resume",
    facts({ outcome: EXPIRED }),
    final("EXPIRED", 143, EXPIRED.reason, "EXPIRED"),
  ],
  [
    "expired by the agent with a checkpoint and attempts left: resumes",
    facts({ outcome: EXPIRED, job: checkpointed }),
    {
      kind: "resume",
      reason: `attempt 1: ${EXPIRED.reason}; resuming from the checkpoint of step 40 (l1)`,
      reasonCode: "EXPIRED",
    },
  ],
  [
    "expired by the agent, asked to resume but no checkpoint",
    facts({ outcome: EXPIRED, job: mockJob({ spec: { resumeOnExpiry: true, maxAttempts: 2 } }) }),
    final(
      "EXPIRED",
      143,
      `${EXPIRED.reason}; not resumed: the job reported no checkpoint`,
      "EXPIRED",
    ),
  ],
  [
    "a result refused while it ran fails a successful exit",
    facts({ job: refusedResult }),
    final("FAILED", 0, "result refused: too large (exited with code 0)", "RESULT_REFUSED"),
  ],
  [
    "a reason with no code does not fail a success",
    facts({ job: mereReason }),
    final("SUCCEEDED", 0, ""),
  ],
  [
    "a result refused while it ran fails an expiry too",
    facts({ outcome: EXPIRED, job: refusedResult }),
    final("FAILED", 143, `result refused: too large (${EXPIRED.reason})`, "RESULT_REFUSED"),
  ],
];

for (const [name, f, want] of cases) {
  Deno.test(`decideAttemptEnd: ${name}`, () => assert.deepEqual(decideAttemptEnd(f), want));
}
