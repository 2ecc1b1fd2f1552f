import assert from "node:assert/strict";
import { mockJob, mockService } from "../core/_mock.ts";
import type { JobRecord, JobState } from "../core/mod.ts";
import {
  jobServicesOf,
  planReconcile,
  type ReconcileInput,
  SERVICE_VANISHED_REASON,
} from "./reconcile_plan.ts";
import { INSTANCE_LABEL, JOB_LABEL } from "./service_spec.ts";
import type { ServiceInfo } from "../swarm/mod.ts";

/** Job `j-…0n` in `state`, its stored service id `svc-j-…0n` unless given. */
function job(n: number, state: JobState, over: Parameters<typeof mockJob>[0] = {}): JobRecord {
  const id = `j-${String(n).padStart(12, "0")}`;
  return mockJob({ id, seq: n, state, serviceId: `svc-${id}`, ...over });
}

/** The service of job n (as listed back from Swarm), optionally with another id. */
function svc(n: number, id?: string): ReturnType<typeof mockService> {
  return mockService(`j-${String(n).padStart(12, "0")}`, id);
}

/** The plan as short strings, e.g. "attach 01 svc-…01"; job ids shortened to their last 2 digits. */
function summary(input: ReconcileInput): string[] {
  const p = planReconcile(input);
  const short = (id: string) => id.slice(-2);
  const svcId = (id: string) => id.replace(/j-0+/, "");
  return [
    ...p.fixServiceIds.map((f) => `fix ${short(f.jobId)} → "${svcId(f.serviceId)}"`),
    ...p.fail.map((f) => `fail ${short(f.jobId)}: ${f.reason}`),
    ...p.attach.map((a) => `attach ${short(a.jobId)} ${svcId(a.serviceId)}`),
    ...p.recreate.map((r) => `recreate ${short(r.jobId)} ${r.image}`),
    ...p.removeServices.map((r) => `remove ${svcId(r.serviceId)} ${r.why}`),
  ];
}

const IMG = "cumulus-job:latest";

const cases: Array<[string, ReconcileInput, string[]]> = [
  ["nothing stored, nothing listed: nothing", { activeJobs: [], services: [] }, []],
  [
    "a RUNNING job whose service exists is attached",
    { activeJobs: [job(1, "RUNNING")], services: [svc(1)] },
    ["attach 01 svc-1"],
  ],
  [
    "a stale stored service id is corrected before attaching",
    { activeJobs: [job(1, "RUNNING", { serviceId: "old" })], services: [svc(1, "new")] },
    ['fix 01 → "new"', "attach 01 new"],
  ],
  [
    "a SCHEDULED job whose runner had created the service is attached",
    { activeJobs: [job(1, "SCHEDULED", { serviceId: "" })], services: [svc(1)] },
    ['fix 01 → "svc-1"', "attach 01 svc-1"],
  ],
  [
    "a SCHEDULED job without a service gets a new one",
    { activeJobs: [job(1, "SCHEDULED", { serviceId: "" })], services: [] },
    [`recreate 01 ${IMG}`],
  ],
  [
    "a SCHEDULED job whose recorded service is gone: the id is cleared, a new one made",
    { activeJobs: [job(1, "SCHEDULED", { spec: { image: "img:2" } })], services: [] },
    ['fix 01 → ""', "recreate 01 img:2"],
  ],
  [
    "a RUNNING job whose service vanished is FAILED",
    { activeJobs: [job(1, "RUNNING")], services: [] },
    [`fail 01: ${SERVICE_VANISHED_REASON}`],
  ],
  [
    "a RESUMING job with a leftover service: only the service goes",
    { activeJobs: [job(1, "RESUMING")], services: [svc(1)] },
    ["remove svc-1 STALE_ATTEMPT"],
  ],
  [
    "a RESUMING job without a service is left to the scheduler",
    { activeJobs: [job(1, "RESUMING", { serviceId: "" })], services: [] },
    [],
  ],
  [
    "a service whose job ended is an orphan",
    { activeJobs: [], services: [svc(1)] },
    ["remove svc-1 ORPHAN"],
  ],
  [
    "an ended or queued job given as active is ignored: its service goes, nothing fails",
    {
      activeJobs: [job(1, "SUCCEEDED"), job(2, "QUEUED"), job(3, "CANCELLED")],
      services: [svc(1), svc(3)],
    },
    ["remove svc-1 ORPHAN", "remove svc-3 ORPHAN"],
  ],
  [
    "a service without a job label is an orphan",
    { activeJobs: [], services: [mockService("", "nolabel")] },
    ["remove nolabel ORPHAN"],
  ],
  [
    "two services naming one job: the last listed is attached, the other removed",
    { activeJobs: [job(1, "RUNNING", { serviceId: "b" })], services: [svc(1, "a"), svc(1, "b")] },
    ["attach 01 b", "remove a ORPHAN"],
  ],
  [
    "a mix keeps input order in every list",
    {
      activeJobs: [
        job(1, "RUNNING"),
        job(2, "RUNNING"),
        job(3, "SCHEDULED", { serviceId: "" }),
        job(4, "RESUMING"),
        job(5, "SCHEDULED"),
        job(6, "RUNNING"),
      ],
      services: [svc(9), svc(5), svc(4), svc(1)],
    },
    [
      `fail 02: ${SERVICE_VANISHED_REASON}`,
      `fail 06: ${SERVICE_VANISHED_REASON}`,
      "attach 01 svc-1",
      "attach 05 svc-5",
      `recreate 03 ${IMG}`,
      "remove svc-9 ORPHAN",
      "remove svc-4 STALE_ATTEMPT",
    ],
  ],
];

for (const [name, input, want] of cases) {
  Deno.test(`planReconcile: ${name}`, () => assert.deepEqual(summary(input), want));
}

Deno.test("jobServicesOf keeps this instance's services only and reads their job label", () => {
  const listed: ServiceInfo[] = [
    { id: "a", name: "cumulus-j-1", labels: { [JOB_LABEL]: "j-1", [INSTANCE_LABEL]: "me" } },
    { id: "b", name: "cumulus-j-2", labels: { [JOB_LABEL]: "j-2", [INSTANCE_LABEL]: "other" } },
    { id: "c", name: "cumulus-j-3", labels: { [JOB_LABEL]: "j-3" } },
    { id: "d", name: "odd", labels: { [INSTANCE_LABEL]: "me" } },
  ];
  assert.deepEqual(jobServicesOf(listed, "me"), [
    { id: "a", jobId: "j-1" },
    { id: "d", jobId: "" },
  ]);
  // A job whose only service is another instance's: to this instance it vanished.
  const running = job(2, "RUNNING");
  assert.deepEqual(summary({ activeJobs: [running], services: jobServicesOf(listed, "me") }), [
    `fail 02: ${SERVICE_VANISHED_REASON}`,
    "remove a ORPHAN",
    "remove d ORPHAN",
  ]);
});
