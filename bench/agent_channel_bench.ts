/**
 * Local agent command latency: one process per command (LocalTransport, how the manager's own
 * node was served before issue 15) against one persistent `cumulus-agent serve --stdio` child
 * (LocalChannelTransport), in the same run, alternating, on one fresh Chronos state dir.
 * Commands: `partition list --json` and `gpus --json` (read-only, so the rounds see the same
 * state). The channel's start-up (the first command) is reported apart.
 *
 * Run alone: `deno run -A bench/agent_channel_bench.ts [--calls 25]` prints a Markdown section.
 * @module
 */
import {
  AgentClient,
  localAgentCommand,
  LocalChannelTransport,
  LocalTransport,
} from "../src/workers/mod.ts";
import { parseIntFlags } from "./flags.ts";
import { fmt, quantile } from "./stats.ts";

const { calls } = parseIntFlags(Deno.args, { calls: 25 });
const stateDir = await Deno.makeTempDir({ prefix: "cumulus-bench-agent-" });
const env = { CHRONOS_STATE_DIR: stateDir };
const agentCommand = localAgentCommand(Deno.env.get("CUMULUS_AGENT_COMMAND") ?? "");
const perCall = new AgentClient(new LocalTransport({ agentCommand, env }));
const channel = new LocalChannelTransport({ agentCommand, env });
const persistent = new AgentClient(channel);

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const shown = [agentCommand[0].split("/").pop(), ...agentCommand.slice(1)].join(" ")
  .replace(Deno.cwd() + "/", "");

try {
  const startMs = await timed(() => persistent.list());
  const ops = {
    "partition list": (a: AgentClient) => a.list(),
    gpus: (a: AgentClient) => a.gpus(),
  };
  const rows: string[] = [];
  for (const [name, op] of Object.entries(ops)) {
    const before: number[] = [];
    const after: number[] = [];
    for (let i = 0; i < calls; i++) {
      before.push(await timed(() => op(perCall)));
      after.push(await timed(() => op(persistent)));
    }
    const p50b = quantile(before, 0.5), p50a = quantile(after, 0.5);
    rows.push(
      `| \`${name}\` | ${calls} | ${fmt(p50b)} | ${fmt(quantile(before, 0.9))} | ${
        fmt(p50a, 2)
      } | ` +
        `${fmt(quantile(after, 0.9), 2)} | ${fmt(p50b / p50a, 0)}× |`,
    );
  }
  console.log(`### Local agent command latency (ms; ${calls} calls each, alternating)

Agent: \`${shown}\`; the channel's first command,
which starts the child, took ${
    fmt(startMs)
  } ms (not in the table); ${channel.starts} child start(s).

| command | calls | process per call p50 | p90 | persistent channel p50 | p90 | speed-up |
|---|---|---|---|---|---|---|
${rows.join("\n")}`);
} finally {
  await channel.close();
  await Deno.remove(stateDir, { recursive: true });
}
