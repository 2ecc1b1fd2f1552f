/**
 * The machine-setup steps of `cumulus-agent join` (src/agent/join.ts calls
 * them in order): a Docker engine (checked; installed through apt only when
 * asked, never on a machine that is itself a container), the agent and
 * libchronos.so copied into the install prefix, the worker user and the
 * Chronos state directory. Each step says what it did or that nothing needed
 * doing, so a second run reports "already" everywhere and changes nothing.
 * Everything that runs is argv, never a shell.
 * @module
 */
import { JoinError } from "./join_error.ts";

/** What a command printed and how it exited. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** The parts of the machine the setup steps use; tests replace them. */
export interface SetupHost {
  /** Runs argv (no shell) and collects its output. */
  run(argv: string[]): Promise<Ran>;
  /** A file's bytes, or null when it does not exist. */
  readBytes(path: string): Promise<Uint8Array | null>;
  /** Replaces a file atomically (temp file + rename), creating its directory. */
  writeFileAtomic(path: string, bytes: Uint8Array, mode: number): Promise<void>;
  /** Whether a path exists. */
  exists(path: string): Promise<boolean>;
  /** Why this machine looks like a container ("" when it does not). */
  containerHint(): Promise<string>;
  /** Prints one progress line. */
  say(line: string): void;
}

/** What the setup steps need to know. */
export interface SetupOptions {
  /** Install prefix: the agent in PREFIX/bin, libchronos.so in PREFIX/lib. */
  prefix: string;
  /** The agent executable to install. */
  agentFile: string;
  /** The libchronos.so to install. */
  chronosLib: string;
  /** The user the orchestrator logs in as (and the daemon runs as). */
  user: string;
  /** Chronos state directory. */
  stateDir: string;
  /** Install Docker through apt when no engine answers. */
  installDocker: boolean;
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0] ?? "";
}

async function dockerInfo(host: SetupHost): Promise<Ran> {
  return await host.run(["docker", "info", "--format", "{{json .Swarm}}"])
    .catch((err) => ({ code: 127, stdout: "", stderr: (err as Error).message }));
}

/** The command lines `--install-docker` runs, in order (shown in docs/workers.md). */
export function dockerInstallCommands(systemd: boolean): string[][] {
  const cmds = [
    ["apt-get", "update", "-q"],
    ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "docker.io"],
  ];
  if (systemd) cmds.push(["systemctl", "enable", "--now", "docker"]);
  return cmds;
}

/**
 * Step "docker", the check (it changes nothing, so it runs before the join
 * token is spent): a Docker engine must answer. On a machine that is itself a
 * container none can run, and the join stops saying so whatever the flags;
 * otherwise with `--install-docker` the engine is installed later
 * ({@link installDocker}).
 * @returns `docker info`'s Swarm section (JSON) of the engine that answers,
 *   or null when it is to be installed.
 * @throws {JoinError} "docker" with one line saying what to do.
 */
export async function checkDocker(o: SetupOptions, host: SetupHost): Promise<string | null> {
  const info = await dockerInfo(host);
  if (info.code === 0) {
    host.say("docker: engine reachable");
    return info.stdout;
  }
  const container = await host.containerHint();
  if (container) {
    throw new JoinError(
      "docker",
      `this machine is itself a container (${container}): no Docker engine can run here, so it ` +
        "cannot be a worker; rent a VM-type instance (docs/workers.md, marketplace instances)",
    );
  }
  if (!o.installDocker) {
    throw new JoinError(
      "docker",
      `no Docker engine reachable (${firstLine(info.stderr) || `exit ${info.code}`}): ` +
        "install Docker Engine and start it, or add --install-docker (apt-get install docker.io)",
    );
  }
  if (!(await host.exists("/usr/bin/apt-get"))) {
    throw new JoinError(
      "docker",
      "no Docker engine reachable and no apt-get to install one: install Docker Engine yourself",
    );
  }
  host.say("docker: no engine yet: it is installed after registration (--install-docker)");
  return null;
}

/**
 * Step "docker", the install (`--install-docker` on a machine without an
 * engine): Debian's docker.io through apt, started by systemd where it runs.
 * @returns `docker info`'s Swarm section (JSON).
 * @throws {JoinError} "docker" when a command fails or no engine answers after.
 */
export async function installDocker(host: SetupHost): Promise<string> {
  const systemd = await host.exists("/run/systemd/system");
  for (const argv of dockerInstallCommands(systemd)) {
    host.say(`docker: running ${argv.join(" ")}`);
    const r = await host.run(argv);
    if (r.code !== 0) {
      throw new JoinError(
        "docker",
        `${argv.join(" ")} failed (exit ${r.code}): ${firstLine(r.stderr)}`,
      );
    }
  }
  const again = await dockerInfo(host);
  if (again.code !== 0) {
    throw new JoinError(
      "docker",
      `docker.io is installed but no engine answers (${firstLine(again.stderr)})` +
        (systemd ? "" : ": start dockerd (no systemd here), then run the join again"),
    );
  }
  host.say("docker: installed docker.io, engine reachable");
  return again.stdout;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The installed agent's path under `prefix`. */
export function agentPathIn(prefix: string): string {
  return `${prefix}/bin/cumulus-agent`;
}

/** The installed libchronos.so's directory under `prefix`. */
export function libDirIn(prefix: string): string {
  return `${prefix}/lib`;
}

/**
 * Copies `src` to `dest` (mode `mode`) unless `dest` holds the same bytes,
 * saying which, prefixed by `step`.
 * @throws {JoinError} "local" when `src` is missing or `dest` cannot be written.
 */
export async function installFile(
  host: SetupHost,
  what: string,
  src: string,
  dest: string,
  mode: number,
  step = "install",
): Promise<void> {
  const bytes = await host.readBytes(src);
  if (bytes === null) {
    throw new JoinError("local", `${what} to install not found at ${src}`);
  }
  const current = src === dest ? bytes : await host.readBytes(dest);
  if (current !== null && sameBytes(current, bytes)) {
    host.say(`${step}: ${what} already up to date at ${dest}`);
    return;
  }
  await host.writeFileAtomic(dest, bytes, mode).catch((err) => {
    throw new JoinError("local", `cannot write ${dest}: ${(err as Error).message}`);
  });
  host.say(`${step}: ${what} ${current === null ? "installed" : "updated"} at ${dest}`);
}

/**
 * Step "install": the agent and libchronos.so into the prefix (replaced only
 * when their bytes differ).
 * @throws {JoinError} "local" when a source is missing or a file cannot be written.
 */
export async function installFiles(o: SetupOptions, host: SetupHost): Promise<void> {
  await installFile(host, "cumulus-agent", o.agentFile, agentPathIn(o.prefix), 0o755);
  await installFile(
    host,
    "libchronos.so",
    o.chronosLib,
    `${libDirIn(o.prefix)}/libchronos.so`,
    0o644,
  );
}

/** A user's home directory, from `getent passwd`. */
export async function homeOf(host: SetupHost, user: string): Promise<string> {
  const r = await host.run(["getent", "passwd", user]);
  const home = r.code === 0 ? r.stdout.trim().split(":")[5] : "";
  if (!home) throw new JoinError("local", `user ${user} has no home directory`);
  return home;
}

/**
 * Step "user": the login the orchestrator uses (created as a system user when
 * missing, with no extra group: what the orchestrator runs through SSH never
 * talks to Docker) and the Chronos state directory it owns. The agent daemon,
 * which does talk to Docker, runs as root (docs/workers.md: who runs what).
 * @throws {JoinError} "local" when a command fails.
 */
export async function ensureUser(o: SetupOptions, host: SetupHost): Promise<void> {
  const must = async (argv: string[]) => {
    const r = await host.run(argv);
    if (r.code !== 0) {
      throw new JoinError("local", `${argv.join(" ")} failed: ${firstLine(r.stderr)}`);
    }
    return r.stdout;
  };
  const id = await host.run(["id", "-u", o.user]);
  if (id.code === 0) {
    host.say(`user: ${o.user} already exists`);
  } else {
    await must(["useradd", "--system", "--create-home", "--shell", "/bin/sh", o.user]);
    host.say(`user: created the system user ${o.user}`);
  }
  if (o.user !== "root") {
    const groups = (await must(["id", "-nG", o.user])).trim().split(/\s+/);
    if (groups.includes("docker")) {
      // Left as the operator set it, but said: the docker group is root-equivalent.
      host.say(
        `user: note: ${o.user} is in the docker group, which it does not need ` +
          `(gpasswd -d ${o.user} docker removes it)`,
      );
    }
  }
  if (await host.exists(o.stateDir)) {
    host.say(`user: Chronos state directory ${o.stateDir} already there`);
  } else {
    await must(["install", "-d", "-m", "0750", "-o", o.user, o.stateDir]);
    host.say(`user: created the Chronos state directory ${o.stateDir}`);
  }
}
