import assert from "node:assert/strict";
import { ConfigError, DEFAULT_CONFIG, loadConfig, parseConfig } from "./mod.ts";

Deno.test("defaults apply when there is no file and no environment", () => {
  const cfg = parseConfig({ yamlText: null, env: {} });
  assert.equal(cfg.port, 50051);
  assert.equal(cfg.maxConcurrentJobs, 5);
  assert.deepEqual(cfg, { ...DEFAULT_CONFIG });
});

Deno.test("environment overrides the YAML file", () => {
  const cfg = parseConfig({
    yamlText: "port: 6000\nmax_concurrent_jobs: 3\nswarm_manager: /tmp/a.sock\n",
    env: { MAX_CONCURRENT_JOBS: "2", SWARM_MANAGER: "tcp://127.0.0.1:2375" },
  });
  assert.equal(cfg.port, 6000);
  assert.equal(cfg.maxConcurrentJobs, 2);
  assert.equal(cfg.swarmManager, "tcp://127.0.0.1:2375");
});

const bad: Array<[string, string | null, Record<string, string>, string]> = [
  ["non-numeric env", null, { ORCHESTRATOR_PORT: "abc" }, "ORCHESTRATOR_PORT"],
  ["port out of range", "port: 70000", {}, "port"],
  ["zero concurrency", null, { MAX_CONCURRENT_JOBS: "0" }, "MAX_CONCURRENT_JOBS"],
  ["fractional int", "max_concurrent_jobs: 1.5", {}, "max_concurrent_jobs"],
  ["unknown key", "max_concurent_jobs: 2", {}, "max_concurent_jobs"],
  ["not a mapping", "- a\n- b", {}, ""],
  ["broken yaml", "port: [1", {}, ""],
  ["bad placement mode", null, { CUMULUS_GPU_PLACEMENT: "on" }, "CUMULUS_GPU_PLACEMENT"],
  ["worker without target", "workers: node1", {}, "workers"],
  ["worker target not user@host", null, { CUMULUS_WORKERS: "n1=host:22" }, "CUMULUS_WORKERS"],
  ["worker target in a mapping", "workers:\n  n1:\n    ssh: 'a b'\n", {}, "workers"],
  [
    "retention not a duration",
    null,
    { CUMULUS_RESULT_RETENTION: "7 days" },
    "CUMULUS_RESULT_RETENTION",
  ],
  ["negative retention", "result_retention: -1", {}, "result_retention"],
  [
    "sweep interval too short",
    null,
    { CUMULUS_RESULT_SWEEP_INTERVAL_MS: "10" },
    "CUMULUS_RESULT_SWEEP_INTERVAL_MS",
  ],
  ["memory not a size", "job_memory_default: lots", {}, "job_memory_default"],
  [
    "memory default above max",
    "job_memory_default: 8GiB\njob_memory_max: 4GiB",
    {},
    "job_memory_default",
  ],
  [
    "cpu default above max",
    null,
    { CUMULUS_JOB_CPU_DEFAULT: "8", CUMULUS_JOB_CPU_MAX: "2" },
    "job_cpu_default",
  ],
  ["job user not numeric", "job_user: cumulus", {}, "job_user"],
  ["bool not a bool", null, { CUMULUS_ALLOW_IMAGE_USER: "yes" }, "CUMULUS_ALLOW_IMAGE_USER"],
];
for (const [name, yamlText, env, key] of bad) {
  Deno.test(`invalid config fails naming the key: ${name}`, () => {
    assert.throws(() => parseConfig({ yamlText, env }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.key, key);
      if (key) assert.match(err.message, new RegExp(key));
      return true;
    });
  });
}

Deno.test("an explicit ORCHESTRATOR_CONFIG that does not exist is an error", async () => {
  await assert.rejects(
    loadConfig({ ORCHESTRATOR_CONFIG: "/nonexistent/cumulus.yaml" }),
    (err: unknown) => err instanceof ConfigError && err.key === "ORCHESTRATOR_CONFIG",
  );
});

Deno.test("loadConfig reads the named file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/c.yaml`, "max_concurrent_jobs: 7\n");
    const cfg = await loadConfig({ ORCHESTRATOR_CONFIG: `${dir}/c.yaml` });
    assert.equal(cfg.maxConcurrentJobs, 7);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("workers accept a YAML mapping or the env form, normalised alike", () => {
  const yaml = parseConfig({
    yamlText: "workers:\n  gpu1: { ssh: cumulus@10.0.0.5:22 }\n  gpu2: cumulus@10.0.0.6\n",
    env: {},
  });
  const env = parseConfig({
    yamlText: null,
    env: { CUMULUS_WORKERS: "gpu1=cumulus@10.0.0.5:22, gpu2=cumulus@10.0.0.6" },
  });
  assert.equal(yaml.workers, "gpu1=cumulus@10.0.0.5:22,gpu2=cumulus@10.0.0.6");
  assert.equal(env.workers, yaml.workers);
});

Deno.test("result_retention takes seconds or a duration; the default is 7 days", () => {
  assert.equal(parseConfig({ yamlText: null, env: {} }).resultRetention, 7 * 86400);
  assert.equal(parseConfig({ yamlText: "result_retention: 12h", env: {} }).resultRetention, 43200);
  assert.equal(parseConfig({ yamlText: "result_retention: 90", env: {} }).resultRetention, 90);
  const env = parseConfig({ yamlText: null, env: { CUMULUS_RESULT_RETENTION: "1d2h" } });
  assert.equal(env.resultRetention, 93600);
  assert.equal(
    parseConfig({ yamlText: null, env: { CUMULUS_RESULT_RETENTION: "0" } }).resultRetention,
    0,
  );
});

Deno.test("job isolation keys take sizes, booleans and uid:gid from YAML and the environment", () => {
  const cfg = parseConfig({
    yamlText: "job_memory_default: 2GiB\njob_memory_max: 16G\nallow_image_user: true\n" +
      "job_user: '2000:3000'\nmax_job_log_bytes: 1MiB",
    env: { CUMULUS_JOB_CPU_DEFAULT: "0.5", CUMULUS_JOB_READ_ONLY_ROOT: "false" },
  });
  assert.equal(cfg.jobMemoryDefault, 2 * 1024 ** 3);
  assert.equal(cfg.jobMemoryMax, 16 * 1024 ** 3);
  assert.equal(cfg.allowImageUser, true);
  assert.equal(cfg.jobUser, "2000:3000");
  assert.equal(cfg.maxJobLogBytes, 1024 ** 2);
  assert.equal(cfg.jobCpuDefault, 0.5);
  assert.equal(cfg.jobReadOnlyRoot, false);
  const defaults = parseConfig({ yamlText: null, env: {} });
  assert.equal(defaults.allowImageUser, false);
  assert.equal(defaults.jobReadOnlyRoot, true);
  assert.equal(defaults.jobUser, "1000:1000");
});

Deno.test("registry takes host:port (empty: none) and registry_auth_file a path", () => {
  assert.equal(DEFAULT_CONFIG.registry, "");
  const c = parseConfig({
    yamlText: "registry: 198.18.0.1:5000\nregistry_auth_file: /etc/cumulus/docker.json",
    env: {},
  });
  assert.equal(c.registry, "198.18.0.1:5000");
  assert.equal(c.registryAuthFile, "/etc/cumulus/docker.json");
  assert.equal(
    parseConfig({ yamlText: null, env: { CUMULUS_REGISTRY: "registry.example.com" } }).registry,
    "registry.example.com",
  );
  for (const bad of ["http://198.18.0.1:5000", "198.18.0.1:5000/x", "r:99999", "a b"]) {
    assert.throws(
      () => parseConfig({ yamlText: `registry: "${bad}"`, env: {} }),
      (err: unknown) => err instanceof ConfigError && err.key === "registry",
      bad,
    );
  }
});
