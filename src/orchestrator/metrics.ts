/**
 * Prometheus text-format metrics: jobs by state, queue length, active jobs,
 * GPU partition shares per device, RPC counts and latencies, the
 * scheduler's rounds (how long each held the event loop) and what told the
 * orchestrator that attempts ended.
 * @module
 */
import { JOB_STATES, type JobState } from "../core/mod.ts";

/**
 * Scheduling rounds observed: how many, and how long each kept the event loop
 * (`busyMs`: the round's synchronous slices between its awaits, i.e. the CPU
 * it took on the orchestrator's one JavaScript thread) and its wall time
 * (`wallMs`, which also counts the Docker and agent calls it awaited).
 */
export class ScheduleRounds {
  /** Rounds recorded. */
  count = 0;
  /** Sum of the rounds' on-thread milliseconds. */
  busyMsSum = 0;
  /** Longest round on the thread, in milliseconds. */
  busyMsMax = 0;
  /** Sum of the rounds' wall milliseconds. */
  wallMsSum = 0;

  /** Records one finished round. */
  record(busyMs: number, wallMs: number): void {
    this.count++;
    this.busyMsSum += busyMs;
    this.busyMsMax = Math.max(this.busyMsMax, busyMs);
    this.wallMsSum += wallMs;
  }

  /** The exposition lines of these counters. */
  render(): string[] {
    return [
      "# HELP cumulus_schedule_round_busy_ms Scheduling rounds' time on the event loop (CPU), ms.",
      "# TYPE cumulus_schedule_round_busy_ms summary",
      `cumulus_schedule_round_busy_ms_sum ${this.busyMsSum.toFixed(3)}`,
      `cumulus_schedule_round_busy_ms_count ${this.count}`,
      "# HELP cumulus_schedule_round_busy_ms_max Longest scheduling round on the event loop, ms.",
      "# TYPE cumulus_schedule_round_busy_ms_max gauge",
      `cumulus_schedule_round_busy_ms_max ${this.busyMsMax.toFixed(3)}`,
      "# HELP cumulus_schedule_round_wall_ms Scheduling rounds' wall time, awaited calls included, ms.",
      "# TYPE cumulus_schedule_round_wall_ms summary",
      `cumulus_schedule_round_wall_ms_sum ${this.wallMsSum.toFixed(3)}`,
      `cumulus_schedule_round_wall_ms_count ${this.count}`,
    ];
  }
}

/**
 * What told the runners that attempts ended: the job's runtime announcing its
 * end (`runtime`), the container's die event (`event`), a Swarm task read
 * (`poll`), or a hook (`hook`: the orchestrator's expiry backstop, a node
 * Swarm marks down past config `node_down_grace`, a removed service).
 */
export class AttemptEnds {
  /** Count by source. */
  readonly bySource: Record<AttemptEndSource, number> = { runtime: 0, event: 0, poll: 0, hook: 0 };

  /** Records one attempt's end. */
  record(source: AttemptEndSource): void {
    this.bySource[source]++;
  }

  /** The exposition lines of these counters. */
  render(): string[] {
    return [
      "# HELP cumulus_attempt_ends_total Attempts seen ending, by what told the orchestrator.",
      "# TYPE cumulus_attempt_ends_total counter",
      ...Object.entries(this.bySource).map(([k, n]) =>
        `cumulus_attempt_ends_total{source="${k}"} ${n}`
      ),
    ];
  }
}

/** See {@link AttemptEnds}. */
export type AttemptEndSource = "runtime" | "event" | "poll" | "hook";

/** Collects RPC observations and renders the /metrics page. */
export class Metrics {
  #rpc = new Map<string, { count: number; sumMs: number }>();
  #codes = new Map<string, number>();

  /** Records one finished RPC. */
  observe(method: string, code: string, ms: number): void {
    const r = this.#rpc.get(method) ?? { count: 0, sumMs: 0 };
    r.count++;
    r.sumMs += ms;
    this.#rpc.set(method, r);
    const k = `${method}\u0000${code}`;
    this.#codes.set(k, (this.#codes.get(k) ?? 0) + 1);
  }

  /**
   * Renders the exposition text; `gpus` is the last inventory read (share held
   * by partitions per node and device), `rounds` the scheduler's rounds.
   */
  render(
    jobs: Partial<Record<JobState, number>>,
    active: number,
    gpus: ReadonlyArray<{ node: string; device: number; allocated: number }> = [],
    rounds?: ScheduleRounds,
    ends?: AttemptEnds,
  ): string {
    const out: string[] = [
      "# HELP cumulus_jobs Jobs in the store by state.",
      "# TYPE cumulus_jobs gauge",
    ];
    for (const s of JOB_STATES) out.push(`cumulus_jobs{state="${s}"} ${jobs[s] ?? 0}`);
    out.push(
      "# HELP cumulus_queue_length Jobs waiting for a slot.",
      "# TYPE cumulus_queue_length gauge",
      `cumulus_queue_length ${jobs.QUEUED ?? 0}`,
      "# HELP cumulus_active_jobs Jobs holding a slot.",
      "# TYPE cumulus_active_jobs gauge",
      `cumulus_active_jobs ${active}`,
      "# HELP cumulus_gpu_share_allocated Share of a device held by partitions (last read).",
      "# TYPE cumulus_gpu_share_allocated gauge",
      ...gpus.map((g) =>
        `cumulus_gpu_share_allocated{node="${g.node}",device="${g.device}"} ${g.allocated}`
      ),
      "# HELP cumulus_rpc_total RPCs handled by method and status.",
      "# TYPE cumulus_rpc_total counter",
    );
    for (const [k, n] of this.#codes) {
      const [m, c] = k.split("\u0000");
      out.push(`cumulus_rpc_total{method="${m}",code="${c}"} ${n}`);
    }
    out.push(
      "# HELP cumulus_rpc_latency_ms RPC latency in milliseconds.",
      "# TYPE cumulus_rpc_latency_ms summary",
    );
    for (const [m, r] of this.#rpc) {
      out.push(`cumulus_rpc_latency_ms_sum{method="${m}"} ${r.sumMs.toFixed(3)}`);
      out.push(`cumulus_rpc_latency_ms_count{method="${m}"} ${r.count}`);
    }
    if (rounds) out.push(...rounds.render());
    if (ends) out.push(...ends.render());
    return out.join("\n") + "\n";
  }
}
