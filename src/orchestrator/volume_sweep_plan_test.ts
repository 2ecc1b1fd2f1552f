import assert from "node:assert/strict";
import { mockJob, mockLookup, mockVolume } from "../core/_mock.ts";
import type { JobRecord, JobState } from "../core/mod.ts";
import { JOB_LABEL } from "./service_spec.ts";
import { type JobVolume, jobVolumesOf, planVolumeSweep } from "./volume_sweep_plan.ts";

const A = "j-0000000000aa";
const B = "j-0000000000bb";

function job(id: string, state: JobState): JobRecord {
  return mockJob({ id, state });
}

const cases: Array<[string, JobVolume[], JobRecord[], string[]]> = [
  ["no volumes: nothing", [], [job(A, "SUCCEEDED")], []],
  ["the volume of an ended job goes", [mockVolume(A)], [job(A, "SUCCEEDED")], [
    `cumulus-ckpt-${A}`,
  ]],
  ["every terminal state counts as ended", [mockVolume(A), mockVolume(B)], [
    job(A, "CANCELLED"),
    job(B, "EXPIRED"),
  ], [`cumulus-ckpt-${A}`, `cumulus-ckpt-${B}`]],
  ["the volume of a running job stays", [mockVolume(A)], [job(A, "RUNNING")], []],
  ["a RESUMING job keeps its volume (its next attempt restores from it)", [mockVolume(A)], [
    job(A, "RESUMING"),
  ], []],
  ["a queued or scheduled job keeps its volume", [mockVolume(A), mockVolume(B)], [
    job(A, "QUEUED"),
    job(B, "SCHEDULED"),
  ], []],
  ["the volume of a job the store does not know goes", [mockVolume(A)], [], [
    `cumulus-ckpt-${A}`,
  ]],
  [
    "a volume whose name is not its job's checkpoint volume stays, even once the job ended",
    [mockVolume(A, "my-data"), mockVolume(B, `cumulus-ckpt-${A}`)],
    [job(A, "FAILED"), job(B, "FAILED")],
    [],
  ],
  ["a volume without a job label goes", [mockVolume("", "cumulus-ckpt-")], [], ["cumulus-ckpt-"]],
  [
    "a mix: only the ended job's volume goes",
    [mockVolume(A), mockVolume(B)],
    [job(A, "RUNNING"), job(B, "SUCCEEDED")],
    [`cumulus-ckpt-${B}`],
  ],
];

for (const [name, volumes, jobs, want] of cases) {
  Deno.test(`planVolumeSweep: ${name}`, () => {
    assert.deepEqual(planVolumeSweep(volumes, mockLookup(...jobs)), want);
  });
}

Deno.test("jobVolumesOf reads each volume's job label", () => {
  assert.deepEqual(
    jobVolumesOf([
      { name: `cumulus-ckpt-${A}`, labels: { [JOB_LABEL]: A, other: "x" } },
      { name: "bare", labels: {} },
    ]),
    [mockVolume(A), mockVolume("", "bare")],
  );
});
