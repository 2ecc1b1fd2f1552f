/**
 * Test helper: a real OpenSSH server on loopback with its own config, a generated host key and a
 * test-owned authorized_keys that authorises a generated client key for root with the agent's
 * forced command (`cumulus-agent ssh-dispatch`, here `deno run src/agent/main.ts`). Started by
 * the test itself (CI has no sshd running); each test gets its own port and temp dir.
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/**
 * Returns a loopback TCP port that was free a moment ago. (Not process.ts's: that module pulls
 * in the orchestrator, which tests of the transport, the agent and the scripts do not need.)
 */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A running sshd. */
export interface Sshd {
  /** Loopback port. */
  port: number;
  /** Temp dir holding keys, config and logs. */
  dir: string;
  /** Client private key authorised with the forced command. */
  keyPath: string;
  /** Chronos state dir the forced command's agent uses. */
  stateDir: string;
  /** sshd's log (one "Accepted publickey" per connection). */
  log(): string;
  /** Stops sshd and every session it serves. */
  stop(): Promise<void>;
  /** Starts it again on the same port and host key (after stop). */
  start(): Promise<void>;
  /** Replaces the host key (takes effect on the next start). */
  regenerateHostKey(): Promise<void>;
  /** Stops it and removes the temp dir. */
  dispose(): Promise<void>;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Every descendant of `pid` (sshd's per-connection children call setsid, so a process group
 * kill does not reach them). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(e.name), Number(fields[1]));
    } catch { /* exited meanwhile */ }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent) {
      if (pp === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

async function waitListening(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`sshd did not listen on ${port} within ${timeoutMs} ms`);
}

/**
 * Starts sshd on 127.0.0.1:<free port>. `env` is set for the forced command (e.g.
 * CHRONOS_STATE_DIR is always set to a fresh temp dir); `command` replaces the agent as the
 * forced command.
 */
export async function startSshd(
  env: Record<string, string> = {},
  command?: string[],
): Promise<Sshd> {
  const dir = await Deno.makeTempDir({ prefix: "cumulus-sshd-" });
  const port = freePort();
  const stateDir = `${dir}/chronos`;
  await Deno.mkdir(stateDir);
  await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const hostKey = `${dir}/host_ed25519`;
  const keyPath = `${dir}/client_ed25519`;
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyPath]);
  const vars = { CHRONOS_STATE_DIR: stateDir, ...env };
  // The forced command is this test's own text (no user data): sshd runs it with sh -c.
  const forced = [
    "env",
    ...Object.entries(vars).map(([k, v]) => `${k}=${shellQuote(v)}`),
    ...(command ?? [
      Deno.execPath(),
      "run",
      "-A",
      "--config",
      `${ROOT}/deno.json`,
      `${ROOT}/src/agent/main.ts`,
      "ssh-dispatch",
    ]).map(shellQuote),
  ].join(" ");
  const pub = (await Deno.readTextFile(`${keyPath}.pub`)).trim();
  await Deno.writeTextFile(
    `${dir}/authorized_keys`,
    `command="${forced.replaceAll('"', '\\"')}",no-pty,no-port-forwarding,` +
      `no-agent-forwarding,no-X11-forwarding ${pub}\n`,
  );
  await Deno.writeTextFile(
    `${dir}/sshd_config`,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${dir}/sshd.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      "PermitRootLogin forced-commands-only",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "MaxStartups 64",
      "LogLevel VERBOSE",
      "",
    ].join("\n"),
  );
  let child: Deno.ChildProcess | null = null;
  const logPath = `${dir}/sshd.log`;

  const start = async () => {
    child = new Deno.Command("/usr/sbin/sshd", {
      args: ["-D", "-f", `${dir}/sshd_config`, "-E", logPath],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitListening(port, 10_000);
  };
  const stop = async () => {
    if (child === null) return;
    const c: Deno.ChildProcess = child;
    child = null;
    for (const pid of [c.pid, ...descendants(c.pid)]) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* already gone */ }
    }
    await c.status;
  };
  await start();
  return {
    port,
    dir,
    keyPath,
    stateDir,
    log: () => {
      try {
        return Deno.readTextFileSync(logPath);
      } catch {
        return "";
      }
    },
    stop,
    start,
    regenerateHostKey: async () => {
      await Deno.remove(hostKey);
      await Deno.remove(`${hostKey}.pub`);
      await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
    },
    dispose: async () => {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
