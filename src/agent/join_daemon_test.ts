import assert from "node:assert/strict";
import { type DaemonOptions, ensureDaemon, supervisorText, unitText } from "./join_daemon.ts";
import type { Ran, SetupHost } from "./join_setup.ts";

const OPTS: DaemonOptions = {
  prefix: "/opt/cumulus",
  stateDir: "/run/chronos",
  serviceMode: "auto",
  graceS: 10,
  dockerHost: "",
  unitPath: "/etc/systemd/system/cumulus-agent.service",
};

/** A machine with systemd; records commands and files. */
function systemdHost(active = true) {
  const files: Record<string, string> = {};
  const ran: string[][] = [];
  const lines: string[] = [];
  const host: SetupHost = {
    run: (argv): Promise<Ran> => {
      ran.push(argv);
      const code = argv[1] === "is-active" && !active ? 3 : 0;
      return Promise.resolve({ code, stdout: "", stderr: "" });
    },
    readBytes: (p) => Promise.resolve(p in files ? new TextEncoder().encode(files[p]) : null),
    writeFileAtomic: (p, b) => {
      files[p] = new TextDecoder().decode(b);
      return Promise.resolve();
    },
    exists: (p) => Promise.resolve(p === "/run/systemd/system" || p in files),
    containerHint: () => Promise.resolve(""),
    say: (l) => lines.push(l),
  };
  return { host, files, ran, lines };
}

Deno.test("the unit runs the installed agent's serve with its library and state dir", () => {
  const text = unitText({ ...OPTS, dockerHost: "unix:///run/d.sock" });
  assert.match(text, /^User=root$/m);
  assert.match(text, /^Environment=CUMULUS_CHRONOS_PATH=\/opt\/cumulus\/lib$/m);
  assert.match(text, /^Environment=CHRONOS_STATE_DIR=\/run\/chronos$/m);
  assert.match(text, /^Environment=DOCKER_HOST=unix:\/\/\/run\/d.sock$/m);
  assert.match(text, /^ExecStart=\/opt\/cumulus\/bin\/cumulus-agent serve --grace 10$/m);
  assert.match(text, /^Restart=always$/m);
  assert.doesNotMatch(unitText(OPTS), /DOCKER_HOST/);
});

Deno.test("the supervisor detaches its output, records its pid and restarts the daemon", () => {
  const text = supervisorText(OPTS);
  assert.match(text, /^exec <\/dev\/null >>\/opt\/cumulus\/log\/agent.log 2>&1$/m);
  assert.match(text, /^echo \$\$ > \/opt\/cumulus\/run\/agent.pid$/m);
  assert.match(text, /cumulus-agent serve --grace 10 &$/m);
  assert.match(text, /^ {2}sleep 1$/m);
});

Deno.test("ensureDaemon() under systemd writes the unit once, then only checks it runs", async () => {
  const f = systemdHost();
  await ensureDaemon(OPTS, f.host);
  assert.equal(f.files[OPTS.unitPath], unitText(OPTS));
  assert.deepEqual(f.ran, [
    ["systemctl", "daemon-reload"],
    ["systemctl", "enable", "cumulus-agent.service"],
    ["systemctl", "restart", "cumulus-agent.service"],
  ]);
  f.ran.length = 0;
  await ensureDaemon(OPTS, f.host);
  assert.deepEqual(f.ran, [["systemctl", "is-active", "--quiet", "cumulus-agent.service"]]);
  assert.equal(f.lines.at(-1), "daemon: cumulus-agent.service already running");
  // Stopped meanwhile: started again, the unit left as it is.
  const stopped = systemdHost(false);
  stopped.files[OPTS.unitPath] = unitText(OPTS);
  await ensureDaemon(OPTS, stopped.host);
  assert.deepEqual(stopped.ran.at(-1), ["systemctl", "enable", "--now", "cumulus-agent.service"]);
  // none: nothing at all.
  const none = systemdHost();
  await ensureDaemon({ ...OPTS, serviceMode: "none" }, none.host);
  assert.deepEqual(none.ran, []);
  assert.deepEqual(none.files, {});
});
