/**
 * What `cumulus up` and `cumulus image build` need from the machine that a
 * single executable cannot bring: a Docker engine, and for building the job
 * image the `docker` client, `debootstrap` and root. Each missing piece is one
 * line with the exact command that installs it; `--install-prereqs` runs
 * those commands when the user is root. Nothing is installed silently.
 * @module
 */

/** Something the machine lacks, and how to get it. */
export interface MissingPrereq {
  /** What is missing, for people ("the Docker engine"). */
  what: string;
  /** Why it is missing, e.g. "no docker.io package (no dockerd on PATH)". */
  why: string;
  /** The exact shell command that installs or starts it ("" when none can: say so in why). */
  fix: string;
}

/** What was found on this machine (see {@link probeMachine}). */
export interface MachineFacts {
  /** Executables found on PATH (and sbin), by name; systemctl only where systemd runs. */
  onPath: ReadonlySet<string>;
  /** The Docker engine answered at its socket or address. */
  engineAnswers: boolean;
  /** Where the engine was looked for. */
  engineAddress: string;
  /** Effective uid (0 = root). */
  uid: number;
}

/** Which prerequisites to check. */
export const PREREQ_SCOPE = {
  /** `up` with a job image present: the engine. */
  engine: "engine",
  /** Building the job image: the engine, the docker client, debootstrap, root. */
  imageBuild: "image-build",
} as const;

/** One of {@link PREREQ_SCOPE}. */
export type PrereqScope = typeof PREREQ_SCOPE[keyof typeof PREREQ_SCOPE];

/**
 * The missing prerequisites, in the order to fix them (pure).
 * @param facts What {@link probeMachine} found.
 * @param scope What is about to run.
 * @returns One entry per missing piece; empty when nothing is missing.
 * @example
 * missingPrereqs({ onPath: new Set(), engineAnswers: false, engineAddress: "/var/run/docker.sock", uid: 0 }, "engine");
 * // [{ what: "the Docker engine", ..., fix: "apt-get install -y docker.io" }]
 */
export function missingPrereqs(facts: MachineFacts, scope: PrereqScope): MissingPrereq[] {
  const out: MissingPrereq[] = [];
  const local = facts.engineAddress.startsWith("/") || facts.engineAddress.startsWith("unix:");
  if (!facts.engineAnswers) {
    if (local && !facts.onPath.has("dockerd")) {
      out.push({
        what: "the Docker engine",
        why: "not installed (no dockerd on PATH)",
        fix: "apt-get install -y docker.io",
      });
    } else if (local) {
      out.push({
        what: "the Docker engine",
        why: `installed but not answering at ${facts.engineAddress}`,
        fix: facts.onPath.has("systemctl")
          ? "systemctl start docker"
          : `setsid dockerd${
            hostFlag(facts.engineAddress)
          } >/var/log/dockerd.log 2>&1 </dev/null &`,
      });
    } else {
      out.push({
        what: "the Docker engine",
        why: `no answer at ${facts.engineAddress} (SWARM_MANAGER)`,
        fix: "",
      });
    }
  }
  if (scope === PREREQ_SCOPE.imageBuild) {
    if (!facts.onPath.has("docker") && (facts.onPath.has("dockerd") || !local)) {
      out.push({
        what: "the docker client (to build the job image)",
        why: "no docker on PATH",
        fix: "apt-get install -y docker.io",
      });
    }
    if (!facts.onPath.has("debootstrap")) {
      out.push({
        what: "debootstrap (to build the base image from this machine's Debian mirror)",
        why: "no debootstrap on PATH",
        fix: "apt-get install -y debootstrap",
      });
    }
    if (facts.uid !== 0 && !facts.onPath.has("sudo")) {
      out.push({
        what: "root (debootstrap runs as root)",
        why: "not root and no sudo",
        fix: "",
      });
    }
  }
  return out;
}

/** dockerd's --host for a socket other than its default (quoted for sh when it must be). */
function hostFlag(address: string): string {
  const path = address.replace(/^unix:\/\//, "");
  if (path === "/var/run/docker.sock" || path === "/run/docker.sock") return "";
  const quoted = /^[A-Za-z0-9_./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
  return ` --host unix://${quoted}`;
}

/** One line per missing piece: "missing: WHAT: WHY; install: FIX". */
export function formatMissing(missing: readonly MissingPrereq[]): string[] {
  return missing.map((m) =>
    `missing: ${m.what}: ${m.why}; ${m.fix ? `fix: ${m.fix}` : "no command can fix this here"}`
  );
}

/**
 * The commands that fix `missing`, each once and in order, with the apt-get
 * installs merged into one (an `apt-get update` first).
 */
export function fixCommands(missing: readonly MissingPrereq[]): string[] {
  const packages: string[] = [];
  const others: string[] = [];
  for (const m of missing) {
    const apt = /^apt-get install -y (.+)$/.exec(m.fix);
    if (apt) packages.push(...apt[1].split(" ").filter((p) => !packages.includes(p)));
    else if (m.fix && !others.includes(m.fix)) others.push(m.fix);
  }
  const head = packages.length
    ? ["apt-get update", `DEBIAN_FRONTEND=noninteractive apt-get install -y ${packages.join(" ")}`]
    : [];
  return [...head, ...others];
}

/** Finds what {@link missingPrereqs} needs on this machine. */
export async function probeMachine(
  engineAddress: string,
  engineAnswers: boolean,
  env: (name: string) => string | undefined,
): Promise<MachineFacts> {
  const names = ["dockerd", "docker", "debootstrap", "sudo", "systemctl"];
  const dirs = (env("PATH") ?? "/usr/bin:/bin").split(":").filter((d) => d.startsWith("/"));
  // Root's tools live in sbin, which a user's PATH often lacks.
  for (const d of ["/usr/sbin", "/sbin", "/usr/local/sbin"]) if (!dirs.includes(d)) dirs.push(d);
  const onPath = new Set<string>();
  for (const n of names) {
    for (const d of dirs) {
      try {
        const st = await Deno.stat(`${d}/${n}`);
        if (st.isFile && ((st.mode ?? 0) & 0o111) !== 0) {
          onPath.add(n);
          break;
        }
      } catch {
        // Not in this directory.
      }
    }
  }
  // systemctl counts only where systemd runs (sd_booted(3): /run/systemd/system exists);
  // containers and hand-started engines have the binary without the service manager.
  if (!await Deno.stat("/run/systemd/system").then((st) => st.isDirectory, () => false)) {
    onPath.delete("systemctl");
  }
  return { onPath, engineAnswers, engineAddress, uid: Deno.uid() ?? -1 };
}

/**
 * Runs `commands` one by one with `sh -c`, output passed through (the user
 * sees apt-get's progress).
 * @throws {Error} when not root, or naming the first command that failed.
 */
export async function runFixes(commands: readonly string[], uid: number): Promise<void> {
  if (uid !== 0) {
    throw new Error(
      `--install-prereqs: runs apt-get, so it needs root (uid ${uid}): run the commands above ` +
        "as root, or 'sudo cumulus up --install-prereqs'",
    );
  }
  for (const c of commands) {
    const status = await new Deno.Command("sh", {
      args: ["-c", c],
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    if (!status.success) throw new Error(`--install-prereqs: '${c}' failed (exit ${status.code})`);
  }
}
