/**
 * The last step of `cumulus-agent join`: the agent daemon (`cumulus-agent
 * serve`, as root: it stops expired jobs' containers through Docker) kept running, under systemd when it runs on this machine, else
 * under the bundled supervisor (a small sh script in PREFIX/bin that
 * restarts it after 1 s; its pid in PREFIX/run/agent.pid, the log in
 * PREFIX/log/agent.log). The unit or script is rewritten, and the daemon
 * restarted, only when its text changes.
 * @module
 */
import { JoinError } from "./join_error.ts";
import { agentPathIn, libDirIn, type SetupHost } from "./join_setup.ts";

/** How the daemon is kept running. */
export type ServiceMode = "auto" | "systemd" | "supervisor" | "none";

/** The service modes `--service-mode` accepts. */
export const SERVICE_MODES: readonly ServiceMode[] = ["auto", "systemd", "supervisor", "none"];

/** What the daemon step needs. */
export interface DaemonOptions {
  prefix: string;
  stateDir: string;
  serviceMode: ServiceMode;
  /** Seconds between SIGTERM and SIGKILL for an expired job. */
  graceS: number;
  /** DOCKER_HOST to pass on ("" for the default socket). */
  dockerHost: string;
  /** The systemd unit file to write. */
  unitPath: string;
  /** Extra `KEY=value`s on a GPU worker (the grants and MPS directories); none when absent. */
  gpuEnv?: readonly string[];
}

/** The daemon's environment: where libchronos.so and the Chronos state are. */
export function daemonEnv(
  o: Pick<DaemonOptions, "prefix" | "stateDir" | "dockerHost" | "gpuEnv">,
): string[] {
  const env = [`CUMULUS_CHRONOS_PATH=${libDirIn(o.prefix)}`, `CHRONOS_STATE_DIR=${o.stateDir}`];
  if (o.dockerHost) env.push(`DOCKER_HOST=${o.dockerHost}`);
  env.push(...o.gpuEnv ?? []);
  return env;
}

/** The systemd unit's text. */
export function unitText(o: DaemonOptions): string {
  return [
    "# Written by cumulus-agent join (docs/workers.md).",
    "[Unit]",
    "Description=Cumulus agent: Chronos partition expiry and GPU housekeeping",
    "After=docker.service",
    "[Service]",
    // Root: it stops expired jobs' containers through the Docker socket. The SSH login owns
    // the Chronos state directory, and Chronos keeps what root writes there the login's.
    "User=root",
    ...daemonEnv(o).map((kv) => `Environment=${kv}`),
    `ExecStart=${agentPathIn(o.prefix)} serve --grace ${o.graceS}`,
    "Restart=always",
    "RestartSec=1",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** Paths of the bundled supervisor under `prefix`. */
export function supervisorPaths(prefix: string) {
  return {
    script: `${prefix}/bin/cumulus-agent-supervise`,
    pidFile: `${prefix}/run/agent.pid`,
    logFile: `${prefix}/log/agent.log`,
  };
}

/**
 * The bundled supervisor's text: it detaches its output first (so whoever
 * started it is not held), records its pid, and restarts the daemon 1 s after
 * it exits; SIGTERM stops both.
 */
export function supervisorText(o: DaemonOptions): string {
  const p = supervisorPaths(o.prefix);
  const serve = `${agentPathIn(o.prefix)} serve --grace ${o.graceS}`;
  return [
    "#!/bin/sh",
    "# Written by cumulus-agent join: keeps 'cumulus-agent serve' running (docs/workers.md).",
    `exec </dev/null >>${p.logFile} 2>&1`,
    `echo $$ > ${p.pidFile}`,
    `trap 'kill $child 2>/dev/null; wait $child; rm -f ${p.pidFile}; exit 0' TERM INT`,
    "while :; do",
    `  env ${daemonEnv(o).join(" ")} ${serve} &`,
    "  child=$!",
    "  wait $child",
    '  echo "$(date -u +%FT%TZ) cumulus-agent serve exited ($?), restarting"',
    "  sleep 1",
    "done",
    "",
  ].join("\n");
}

const enc = new TextEncoder();
const dec = new TextDecoder();

async function must(host: SetupHost, argv: string[]): Promise<string> {
  const r = await host.run(argv);
  if (r.code !== 0) {
    throw new JoinError(
      "local",
      `${argv.join(" ")} failed: ${r.stderr.trim().split("\n")[0] ?? ""}`,
    );
  }
  return r.stdout;
}

/** Writes `text` to `path` unless it holds it already; true when written. */
async function writeIfChanged(
  host: SetupHost,
  path: string,
  text: string,
  mode: number,
): Promise<boolean> {
  const cur = await host.readBytes(path);
  if (cur !== null && dec.decode(cur) === text) return false;
  await host.writeFileAtomic(path, enc.encode(text), mode);
  return true;
}

/** The supervisor's pid when it runs (the pid file names a live process running the script). */
async function supervisorPid(host: SetupHost, prefix: string): Promise<number | null> {
  const p = supervisorPaths(prefix);
  const raw = await host.readBytes(p.pidFile);
  const pid = raw === null ? NaN : Number(dec.decode(raw).trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const cmdline = await host.readBytes(`/proc/${pid}/cmdline`);
  if (cmdline === null) return null;
  return dec.decode(cmdline).split("\0").includes(p.script) ? pid : null;
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return await check();
}

/**
 * Step "daemon": starts the agent daemon, or leaves it running when nothing
 * about it changed.
 * @throws {JoinError} "local" when a command fails or the supervisor does not start.
 */
export async function ensureDaemon(o: DaemonOptions, host: SetupHost): Promise<void> {
  let mode = o.serviceMode;
  if (mode === "none") {
    host.say("daemon: not managed here (--service-mode none)");
    return;
  }
  if (mode === "auto") {
    mode = (await host.exists("/run/systemd/system")) ? "systemd" : "supervisor";
  }
  if (mode === "systemd") {
    const changed = await writeIfChanged(host, o.unitPath, unitText(o), 0o644);
    if (changed) {
      await must(host, ["systemctl", "daemon-reload"]);
      await must(host, ["systemctl", "enable", "cumulus-agent.service"]);
      await must(host, ["systemctl", "restart", "cumulus-agent.service"]);
      host.say(`daemon: wrote ${o.unitPath} and (re)started cumulus-agent.service`);
      return;
    }
    const active = await host.run(["systemctl", "is-active", "--quiet", "cumulus-agent.service"]);
    if (active.code === 0) {
      host.say("daemon: cumulus-agent.service already running");
    } else {
      await must(host, ["systemctl", "enable", "--now", "cumulus-agent.service"]);
      host.say("daemon: started cumulus-agent.service");
    }
    return;
  }
  const p = supervisorPaths(o.prefix);
  const changed = await writeIfChanged(host, p.script, supervisorText(o), 0o755);
  for (const dir of [`${o.prefix}/run`, `${o.prefix}/log`]) {
    if (!(await host.exists(dir))) {
      await must(host, ["install", "-d", "-m", "0755", dir]);
    }
  }
  let pid = await supervisorPid(host, o.prefix);
  if (pid !== null && !changed) {
    host.say(`daemon: already running under the supervisor (pid ${pid}, log ${p.logFile})`);
    return;
  }
  if (pid !== null) {
    await must(host, ["kill", String(pid)]);
    const old = pid;
    await waitFor(async () => (await host.readBytes(`/proc/${old}/cmdline`)) === null, 5_000);
  }
  // setsid -f: the supervisor (root, as the join) leaves this process's session, and its
  // output, first thing.
  await must(host, ["setsid", "-f", "/bin/sh", p.script]);
  const started = await waitFor(
    async () => (pid = await supervisorPid(host, o.prefix)) !== null,
    5_000,
  );
  if (!started) throw new JoinError("local", `the supervisor ${p.script} did not start`);
  host.say(
    `daemon: ${changed ? "wrote the supervisor and " : ""}started the agent daemon ` +
      `(supervisor pid ${pid}, log ${p.logFile})`,
  );
}
