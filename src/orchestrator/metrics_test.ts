import assert from "node:assert/strict";
import { Metrics, ScheduleRounds } from "./metrics.ts";

Deno.test("ScheduleRounds.record() sums rounds and keeps the longest on the thread", () => {
  const r = new ScheduleRounds();
  r.record(1.5, 10);
  r.record(0.5, 30);
  assert.equal(r.count, 2);
  assert.equal(r.busyMsSum, 2);
  assert.equal(r.busyMsMax, 1.5);
  assert.equal(r.wallMsSum, 40);
});

Deno.test("Metrics.render() exports the scheduling rounds when given", () => {
  const r = new ScheduleRounds();
  r.record(2, 7);
  const text = new Metrics().render({ QUEUED: 3 }, 1, [], r);
  assert.match(text, /^cumulus_schedule_round_busy_ms_sum 2\.000$/m);
  assert.match(text, /^cumulus_schedule_round_busy_ms_count 1$/m);
  assert.match(text, /^cumulus_schedule_round_busy_ms_max 2\.000$/m);
  assert.match(text, /^cumulus_schedule_round_wall_ms_sum 7\.000$/m);
  assert.match(text, /^cumulus_queue_length 3$/m);
  assert.doesNotMatch(new Metrics().render({}, 0), /cumulus_schedule_round/);
});
