import assert from "node:assert/strict";
import { fixCommands, formatMissing, type MachineFacts, missingPrereqs } from "./prereqs.ts";

const facts = (p: Partial<MachineFacts>): MachineFacts => ({
  onPath: new Set(["dockerd", "docker", "debootstrap"]),
  engineAnswers: true,
  engineAddress: "/var/run/docker.sock",
  uid: 0,
  ...p,
});

Deno.test("missingPrereqs() names each missing piece with the command that fixes it", () => {
  const cases: [string, MachineFacts, "engine" | "image-build", string[]][] = [
    ["all there", facts({}), "image-build", []],
    ["no engine package", facts({ onPath: new Set(), engineAnswers: false }), "engine", [
      "apt-get install -y docker.io",
    ]],
    [
      "engine stopped, systemd",
      facts({
        onPath: new Set(["dockerd", "systemctl"]),
        engineAnswers: false,
      }),
      "engine",
      ["systemctl start docker"],
    ],
    [
      "engine stopped, no systemd",
      facts({ onPath: new Set(["dockerd"]), engineAnswers: false }),
      "engine",
      [
        "setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &",
      ],
    ],
    [
      "engine stopped, own socket",
      facts({
        onPath: new Set(["dockerd"]),
        engineAnswers: false,
        engineAddress: "/run/cumulus-docker.sock",
      }),
      "engine",
      [
        "setsid dockerd --host unix:///run/cumulus-docker.sock >/var/log/dockerd.log 2>&1 </dev/null &",
      ],
    ],
    [
      "remote engine down",
      facts({ engineAnswers: false, engineAddress: "tcp://10.0.0.5:2375" }),
      "engine",
      [""],
    ],
    [
      "build without debootstrap",
      facts({ onPath: new Set(["dockerd", "docker"]) }),
      "image-build",
      [
        "apt-get install -y debootstrap",
      ],
    ],
    ["build as a user without sudo", facts({ uid: 1000 }), "image-build", [""]],
    ["engine check ignores build tools", facts({ onPath: new Set(["dockerd"]) }), "engine", []],
  ];
  for (const [name, f, scope, fixes] of cases) {
    assert.deepEqual(missingPrereqs(f, scope).map((m) => m.fix), fixes, name);
  }
});

Deno.test("fixCommands() merges apt-get installs after one update; formatMissing() is one line each", () => {
  const missing = missingPrereqs(facts({ onPath: new Set(), engineAnswers: false }), "image-build");
  assert.deepEqual(fixCommands(missing), [
    "apt-get update",
    "DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io debootstrap",
  ]);
  const lines = formatMissing(missing);
  assert.equal(lines.length, missing.length);
  assert.match(
    lines[0],
    /^missing: the Docker engine: not installed .*; fix: apt-get install -y docker.io$/,
  );
});
