// cumulus-gpu-runc: argv parsing, grant validation and the config.json rewrite as pure functions
// (a fixed stat function stands in for device nodes only there), then the I/O half on real files
// and the built wrapper as a real process exec'ing a stand-in runtime. The same wrapper through
// real runc is tested in tests/gpu_runtime_test.ts.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "gpu_runc.hpp"
#include "helpers.hpp"
#include "runtime_io.hpp"

namespace rt = chronos::runtime;
using chronos_test::read_file;
using chronos_test::run_process;
using chronos_test::TempDir;
using chronos_test::write_file;

namespace {

const char *const kJob = "j-0123456789ab";
const char *const kP0 = "p-00000000000a";
const char *const kP1 = "p-00000000000b";

const char *no_env(const char *) { return nullptr; }

/** A grant as the agent writes it for a fractional NVIDIA partition (MPS). */
rt::Json grant_json(const std::string &partition, uint32_t index, const std::string &uuid) {
  rt::Json g = {
      {"version", 1},
      {"jobId", kJob},
      {"partitionId", partition},
      {"gpu",
       {{"vendor", "nvidia"}, {"index", index}, {"uuid", uuid}, {"pciBusId", "0000:19:00.0"}}},
      {"devices",
       {{{"path", "/dev/nvidia" + std::to_string(index)}},
        {{"path", "/dev/nvidiactl"}},
        {{"path", "/dev/nvidia-uvm"}},
        {{"path", "/dev/nvidia-uvm-tools"}}}},
      {"mounts",
       {{{"source", "/usr/local/nvidia"}, {"destination", "/usr/local/nvidia"}},
        {{"source", "/run/cumulus/mps/" + uuid + "/pipe"},
         {"destination", "/run/cumulus/mps/" + uuid + "/pipe"},
         {"writable", true}}}},
      {"env",
       {{"CUMULUS_GPU_MEMORY_BYTES", "21474836480"},
        {"CUDA_MPS_PIPE_DIRECTORY", "/run/cumulus/mps/" + uuid + "/pipe"},
        {"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "0=20480M"}}},
      {"pathEnv",
       {{"LD_LIBRARY_PATH", {"/usr/local/nvidia/lib64"}}, {"PATH", {"/usr/local/nvidia/bin"}}}},
      {"hostIpc", true},
  };
  return g;
}

rt::Grant grant(const std::string &partition, uint32_t index, const std::string &uuid) {
  return rt::parse_grant(grant_json(partition, index, uuid).dump(), partition);
}

/** A config shaped like `runc spec` / Docker's, with the given process env. */
rt::Json config_json(const std::vector<std::string> &env) {
  rt::Json c = {
      {"ociVersion", "1.0.2-dev"},
      {"process", {{"terminal", false}, {"args", {"sh"}}, {"env", env}, {"cwd", "/"}}},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "runc"},
      {"mounts", {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}}}},
      {"linux",
       {{"resources", {{"devices", {{{"allow", false}, {"access", "rwm"}}}}}},
        {"namespaces",
         {{{"type", "pid"}}, {{"type", "network"}}, {{"type", "ipc"}}, {{"type", "mount"}}}}}},
  };
  return c;
}

std::vector<std::string> job_env(const std::string &ids) {
  return {"PATH=/usr/bin:/bin", "NVIDIA_VISIBLE_DEVICES=all", std::string("CUMULUS_JOB_ID=") + kJob,
          "CUMULUS_PARTITION_IDS=" + ids};
}

/** Device numbers by host path, as a worker's /dev would give them. */
rt::DeviceNode fixed_stat(const std::string &path) {
  static const std::map<std::string, rt::DeviceNode> nodes = {
      {"/dev/nvidia0", {'c', 195, 0}},   {"/dev/nvidia1", {'c', 195, 1}},
      {"/dev/nvidiactl", {'c', 195, 255}}, {"/dev/nvidia-uvm", {'c', 508, 0}},
      {"/dev/nvidia-uvm-tools", {'c', 508, 1}},
  };
  const auto it = nodes.find(path);
  if (it == nodes.end()) throw rt::Refusal("device " + path + ": cannot stat, got no such file");
  return it->second;
}

std::vector<std::string> env_of(const rt::Json &config) {
  return config["process"]["env"].get<std::vector<std::string>>();
}

std::string env_value(const rt::Json &config, const std::string &name) {
  std::string value = "<unset>";
  for (const std::string &e : env_of(config)) {
    if (e.compare(0, name.size() + 1, name + "=") == 0) value = e.substr(name.size() + 1);
  }
  return value;
}

size_t count_env(const rt::Json &config, const std::string &name) {
  size_t n = 0;
  for (const std::string &e : env_of(config)) n += e.compare(0, name.size() + 1, name + "=") == 0;
  return n;
}

template <typename Fn>
std::string refusal_of(Fn &&fn) {
  try {
    fn();
  } catch (const rt::Refusal &r) {
    return r.what();
  }
  return "<no refusal>";
}

}  // namespace

// ---- argv ----

TEST_CASE("argv: wrapper flags are read and removed, runc's flags and subcommand kept",
          "[runtime]") {
  const rt::Invocation inv = rt::parse_invocation(
      {"--cumulus-grants=/g", "--root", "/var/run/runc", "--cumulus-runc", "/opt/runc", "--log",
       "/l.json", "--log-format=json", "--systemd-cgroup", "create", "--bundle", "/b",
       "--pid-file", "/p", "ctr"},
      no_env);
  CHECK(inv.grants_dir == "/g");
  CHECK(inv.runtime_path == "/opt/runc");
  CHECK(inv.subcommand == "create");
  CHECK(inv.bundle == "/b");
  CHECK(inv.log_path == "/l.json");
  CHECK(inv.log_format == "json");
  CHECK(inv.reads_config());
  CHECK(inv.runtime_args ==
        std::vector<std::string>{"--root", "/var/run/runc", "--log", "/l.json",
                                 "--log-format=json", "--systemd-cgroup", "create", "--bundle",
                                 "/b", "--pid-file", "/p", "ctr"});
}

TEST_CASE("argv: the bundle is found in every spelling runc accepts", "[runtime]") {
  struct Case {
    std::vector<std::string> args;
    std::string bundle;
  };
  const std::vector<Case> cases = {
      {{"create", "--bundle", "/b", "id"}, "/b"},
      {{"create", "--bundle=/b", "id"}, "/b"},
      {{"create", "-b", "/b", "id"}, "/b"},
      {{"create", "-b=/b", "id"}, "/b"},
      {{"create", "-bundle", "/b", "id"}, "/b"},
      {{"run", "--detach", "--pid-file", "/p", "-b", "/b", "id"}, "/b"},
      {{"create", "id"}, "."},
      // After the container id, flags are the container's business, not runc's.
      {{"run", "id", "--bundle", "/x"}, "."},
      {{"--root", "/r", "run", "--console-socket", "/s", "--bundle", "/b", "id"}, "/b"},
  };
  for (const Case &c : cases) {
    INFO(c.args.size() << " args, first " << c.args.front());
    CHECK(rt::parse_invocation(c.args, no_env).bundle == c.bundle);
  }
}

TEST_CASE("argv: a global flag's value is never taken for the subcommand", "[runtime]") {
  const rt::Invocation inv = rt::parse_invocation({"--root", "create", "state", "id"}, no_env);
  CHECK(inv.subcommand == "state");
  CHECK_FALSE(inv.reads_config());
  const rt::Invocation run = rt::parse_invocation({"--log", "run", "run", "id"}, no_env);
  CHECK(run.subcommand == "run");
  CHECK(run.log_path == "run");
}

TEST_CASE("argv: only create and run read config.json", "[runtime]") {
  for (const char *sub : {"start", "delete", "kill", "state", "exec", "events", "spec", "ps"}) {
    INFO(sub);
    CHECK_FALSE(rt::parse_invocation({sub, "id"}, no_env).reads_config());
  }
  const rt::Invocation version = rt::parse_invocation({"--version"}, no_env);
  CHECK(version.subcommand.empty());
  CHECK(version.runtime_args == std::vector<std::string>{"--version"});
}

TEST_CASE("argv: environment fallbacks apply when the flags are absent, flags win",
          "[runtime]") {
  const auto env = [](const char *name) -> const char * {
    const std::string n(name);
    if (n == "CUMULUS_GPU_GRANTS_DIR") return "/env/grants";
    if (n == "CUMULUS_GPU_RUNC") return "/env/runc";
    return nullptr;
  };
  rt::Invocation inv = rt::parse_invocation({"create", "id"}, env);
  CHECK(inv.grants_dir == "/env/grants");
  CHECK(inv.runtime_path == "/env/runc");
  inv = rt::parse_invocation({"--cumulus-grants=/flag", "--cumulus-runc=/flag/runc", "start", "id"},
                             env);
  CHECK(inv.grants_dir == "/flag");
  CHECK(inv.runtime_path == "/flag/runc");
  inv = rt::parse_invocation({"create", "id"}, no_env);
  CHECK(inv.grants_dir == rt::kDefaultGrantsDir);
  CHECK(inv.runtime_path.empty());
}

TEST_CASE("argv: an empty wrapper flag is refused, one after the subcommand is runc's",
          "[runtime]") {
  CHECK_THAT(refusal_of([] { rt::parse_invocation({"--cumulus-grants=", "create"}, no_env); }),
             Catch::Contains("--cumulus-grants: empty value"));
  const rt::Invocation inv = rt::parse_invocation({"state", "--cumulus-grants=/g"}, no_env);
  CHECK(inv.runtime_args == std::vector<std::string>{"state", "--cumulus-grants=/g"});
  CHECK(inv.grants_dir == rt::kDefaultGrantsDir);
}

TEST_CASE("the NVIDIA runtime is recognised by its file name", "[runtime]") {
  CHECK(rt::is_nvidia_runtime("/usr/bin/nvidia-container-runtime"));
  CHECK(rt::is_nvidia_runtime("nvidia-container-runtime"));
  CHECK_FALSE(rt::is_nvidia_runtime("/usr/sbin/runc"));
  CHECK_FALSE(rt::is_nvidia_runtime("/usr/bin/nvidia-container-runtime-hook"));
}

// ---- grants ----

TEST_CASE("a version-1 grant parses into its fields", "[runtime]") {
  const rt::Grant g = grant(kP0, 0, "GPU-aaaa");
  CHECK(g.job_id == kJob);
  CHECK(g.partition_id == kP0);
  CHECK(g.vendor == "nvidia");
  CHECK(g.index == 0);
  CHECK(g.uuid == "GPU-aaaa");
  CHECK(g.pci_bus_id == "0000:19:00.0");
  REQUIRE(g.devices.size() == 4);
  CHECK(g.devices[0].path == "/dev/nvidia0");
  CHECK(g.devices[0].host_path == "/dev/nvidia0");
  REQUIRE(g.mounts.size() == 2);
  CHECK_FALSE(g.mounts[0].writable);
  CHECK(g.mounts[1].writable);
  REQUIRE(g.env.size() == 3);
  CHECK(g.env[2].first == "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT");
  REQUIRE(g.path_env.size() == 2);
  CHECK(g.path_env[0].first == "LD_LIBRARY_PATH");
  CHECK(g.host_ipc);

  rt::Json minimal = grant_json(kP0, 0, "");
  minimal["gpu"]["vendor"] = "amd";
  minimal["devices"] = {{{"path", "/dev/kfd"}, {"hostPath", "/tmp/standin/kfd"}}};
  for (const char *key : {"mounts", "env", "pathEnv", "hostIpc"}) minimal.erase(key);
  const rt::Grant m = rt::parse_grant(minimal.dump(), kP0);
  CHECK(m.devices[0].host_path == "/tmp/standin/kfd");
  CHECK(m.mounts.empty());
  CHECK_FALSE(m.host_ipc);
}

TEST_CASE("malformed grants are refused with the field named", "[runtime]") {
  struct Case {
    const char *name;
    std::function<void(rt::Json &)> edit;
    const char *message;
  };
  const std::vector<Case> cases = {
      {"version 2", [](rt::Json &g) { g["version"] = 2; }, ".version: unsupported"},
      {"no job id", [](rt::Json &g) { g.erase("jobId"); }, ".jobId: missing"},
      {"empty job id", [](rt::Json &g) { g["jobId"] = ""; }, ".jobId: empty"},
      {"other partition", [](rt::Json &g) { g["partitionId"] = kP1; },
       ".partitionId: differs from the file name"},
      {"vendor", [](rt::Json &g) { g["gpu"]["vendor"] = "matrox"; }, ".gpu.vendor: not nvidia"},
      {"index", [](rt::Json &g) { g["gpu"]["index"] = -1; }, ".gpu.index: not a device index"},
      {"uuid list", [](rt::Json &g) { g["gpu"]["uuid"] = "GPU-a,GPU-b"; }, ".gpu.uuid: contains"},
      {"relative device", [](rt::Json &g) { g["devices"][0]["path"] = "dev/nvidia0"; },
       ".devices[0].path: not an absolute path"},
      {"dotdot mount", [](rt::Json &g) { g["mounts"][0]["source"] = "/usr/../etc"; },
       ".mounts[0].source: not an absolute path without '..'"},
      {"writable not bool", [](rt::Json &g) { g["mounts"][0]["writable"] = "yes"; },
       ".mounts[0].writable: not a boolean"},
      {"env value", [](rt::Json &g) { g["env"]["X"] = 1; }, ".env.X: not a string"},
      {"env name", [](rt::Json &g) { g["env"]["A=B"] = "x"; }, "not an environment variable name"},
      {"empty path entry", [](rt::Json &g) { g["pathEnv"]["PATH"] = {""}; },
       ".pathEnv.PATH: entries must be non-empty"},
      {"devices not array", [](rt::Json &g) { g["devices"] = "/dev/nvidia0"; },
       ".devices: not an array"},
      {"hostIpc", [](rt::Json &g) { g["hostIpc"] = 1; }, ".hostIpc: not a boolean"},
  };
  for (const Case &c : cases) {
    INFO(c.name);
    rt::Json g = grant_json(kP0, 0, "GPU-aaaa");
    c.edit(g);
    const std::string text = g.dump();
    CHECK_THAT(refusal_of([&] { rt::parse_grant(text, kP0); }),
               Catch::StartsWith(std::string("grant ") + kP0) && Catch::Contains(c.message));
  }
  CHECK_THAT(refusal_of([] { rt::parse_grant("{not json", kP0); }),
             Catch::Contains("not valid json"));
  CHECK_THAT(refusal_of([] { rt::parse_grant("[]", kP0); }), Catch::Contains("not a json object"));
}

// ---- which containers are jobs ----

TEST_CASE("a config without CUMULUS_JOB_ID is not a job, even if it names partitions",
          "[runtime]") {
  rt::Json parsed;
  const rt::JobRequest req = rt::inspect_config(
      config_json({"PATH=/bin", std::string("CUMULUS_PARTITION_IDS=") + kP0}).dump(), parsed);
  CHECK_FALSE(req.is_job);
  CHECK(req.partition_ids.empty());
  CHECK_FALSE(rt::inspect_config("{\"process\":{}}", parsed).is_job);
  CHECK_FALSE(rt::inspect_config("[1,2]", parsed).is_job);
}

TEST_CASE("a job's partitions come from CUMULUS_PARTITION_IDS, else CUMULUS_PARTITION_ID",
          "[runtime]") {
  rt::Json parsed;
  rt::JobRequest req =
      rt::inspect_config(config_json(job_env(std::string(kP0) + "," + kP1)).dump(), parsed);
  CHECK(req.is_job);
  CHECK(req.job_id == kJob);
  CHECK(req.partition_ids == std::vector<std::string>{kP0, kP1});
  CHECK(parsed["ociVersion"] == "1.0.2-dev");

  req = rt::inspect_config(config_json({std::string("CUMULUS_JOB_ID=") + kJob,
                                        std::string("CUMULUS_PARTITION_ID=") + kP1})
                               .dump(),
                           parsed);
  CHECK(req.partition_ids == std::vector<std::string>{kP1});

  req = rt::inspect_config(config_json({std::string("CUMULUS_JOB_ID=") + kJob}).dump(), parsed);
  CHECK(req.is_job);
  CHECK(req.partition_ids.empty());
}

TEST_CASE("malformed partition ids and job configs are refused", "[runtime]") {
  rt::Json parsed;
  for (const std::string ids : {"p-../../etc/x", "p-0000000000AA", "p-00000000000a,", "x"}) {
    INFO(ids);
    const std::string text = config_json(job_env(ids)).dump();
    CHECK_THAT(refusal_of([&] { rt::inspect_config(text, parsed); }),
               Catch::StartsWith("CUMULUS_PARTITION_IDS: malformed partition id"));
  }
  const std::string repeated = config_json(job_env(std::string(kP0) + "," + kP0)).dump();
  CHECK_THAT(refusal_of([&] { rt::inspect_config(repeated, parsed); }),
             Catch::Contains("repeated partition id"));
  CHECK_THAT(refusal_of([&] { rt::inspect_config("{\"CUMULUS_JOB_ID=x\"", parsed); }),
             Catch::StartsWith("config.json: not valid json"));
  CHECK_THAT(refusal_of([&] {
               rt::inspect_config("{\"process\":{\"env\":[\"CUMULUS_JOB_ID=x\",1]}}", parsed);
             }),
             Catch::StartsWith("config.json: process.env: not a list of strings"));
  // Broken JSON that is not a job's is runc's to report.
  CHECK_FALSE(rt::inspect_config("{broken", parsed).is_job);
}

// ---- the rewrite ----

TEST_CASE("one grant adds its devices, rules, mounts and env, and drops the ipc namespace",
          "[runtime]") {
  rt::Json config = config_json(job_env(kP0));
  config["process"]["env"].push_back("LD_LIBRARY_PATH=");
  const rt::Json out = rt::apply_grants(config, kJob, {grant(kP0, 0, "GPU-aaaa")}, fixed_stat, {});

  const rt::Json &devices = out["linux"]["devices"];
  REQUIRE(devices.size() == 4);
  CHECK(devices[0] == rt::Json({{"path", "/dev/nvidia0"}, {"type", "c"}, {"major", 195},
                                {"minor", 0}, {"fileMode", 0666}, {"uid", 0}, {"gid", 0}}));
  CHECK(devices[3]["path"] == "/dev/nvidia-uvm-tools");
  const rt::Json &rules = out["linux"]["resources"]["devices"];
  REQUIRE(rules.size() == 5);
  CHECK(rules[0] == rt::Json({{"allow", false}, {"access", "rwm"}}));  // Docker's deny-all first
  CHECK(rules[1] == rt::Json({{"allow", true}, {"type", "c"}, {"major", 195}, {"minor", 0},
                              {"access", "rwm"}}));
  CHECK(rules[2]["minor"] == 255);

  const rt::Json &mounts = out["mounts"];
  REQUIRE(mounts.size() == 3);
  CHECK(mounts[1] == rt::Json({{"destination", "/usr/local/nvidia"}, {"type", "bind"},
                               {"source", "/usr/local/nvidia"},
                               {"options", {"rbind", "ro", "nosuid"}}}));
  CHECK(mounts[2]["options"] == rt::Json({"rbind", "nosuid"}));

  CHECK(env_value(out, "CUMULUS_GPU_MEMORY_BYTES") == "21474836480");
  CHECK(env_value(out, "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT") == "0=20480M");
  CHECK(env_value(out, "PATH") == "/usr/local/nvidia/bin:/usr/bin:/bin");
  CHECK(env_value(out, "LD_LIBRARY_PATH") == "/usr/local/nvidia/lib64");
  CHECK(env_value(out, "CUDA_VISIBLE_DEVICES") == "0");
  CHECK(env_value(out, "NVIDIA_VISIBLE_DEVICES") == "GPU-aaaa");
  CHECK(count_env(out, "NVIDIA_VISIBLE_DEVICES") == 1);
  CHECK(env_value(out, "CUMULUS_GPU_UUIDS") == "GPU-aaaa");
  CHECK(env_value(out, "CUMULUS_JOB_ID") == kJob);

  const rt::Json &ns = out["linux"]["namespaces"];
  CHECK(ns == rt::Json({{{"type", "pid"}}, {{"type", "network"}}, {{"type", "mount"}}}));
  // Everything else is as it was, in the same key order.
  CHECK(out["root"] == config["root"]);
  CHECK(out.begin().key() == "ociVersion");
  CHECK(out["process"]["args"] == config["process"]["args"]);
}

TEST_CASE("two grants number their GPUs from 0 and share nodes and mounts once", "[runtime]") {
  const rt::Json config = config_json(job_env(std::string(kP0) + "," + kP1));
  const rt::Json out = rt::apply_grants(
      config, kJob, {grant(kP0, 0, "GPU-aaaa"), grant(kP1, 1, "GPU-bbbb")}, fixed_stat, {});
  std::vector<std::string> paths;
  for (const rt::Json &d : out["linux"]["devices"]) paths.push_back(d["path"].get<std::string>());
  CHECK(paths == std::vector<std::string>{"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm",
                                          "/dev/nvidia-uvm-tools", "/dev/nvidia1"});
  CHECK(out["linux"]["resources"]["devices"].size() == 1 + 5);
  CHECK(out["mounts"].size() == 1 + 3);  // /usr/local/nvidia once, one pipe dir per GPU
  CHECK(env_value(out, "CUDA_VISIBLE_DEVICES") == "0,1");
  CHECK(env_value(out, "NVIDIA_VISIBLE_DEVICES") == "GPU-aaaa,GPU-bbbb");
  CHECK(env_value(out, "CUMULUS_GPU_UUIDS") == "GPU-aaaa,GPU-bbbb");
  CHECK(env_value(out, "PATH") == "/usr/local/nvidia/bin:/usr/bin:/bin");
}

TEST_CASE("whole-GPU grants (no MPS) keep the ipc namespace", "[runtime]") {
  rt::Json g = grant_json(kP0, 0, "GPU-aaaa");
  g.erase("hostIpc");
  g["env"] = rt::Json::object();
  g["mounts"] = rt::Json::array({g["mounts"][0]});
  const rt::Json config = config_json(job_env(kP0));
  const rt::Json out =
      rt::apply_grants(config, kJob, {rt::parse_grant(g.dump(), kP0)}, fixed_stat, {});
  CHECK(out["linux"]["namespaces"] == config["linux"]["namespaces"]);
  CHECK(env_value(out, "CUDA_MPS_PIPE_DIRECTORY") == "<unset>");
}

TEST_CASE("a grant of another job is refused", "[runtime]") {
  rt::Json g = grant_json(kP0, 0, "GPU-aaaa");
  g["jobId"] = "j-ffffffffffff";
  const rt::Grant other = rt::parse_grant(g.dump(), kP0);
  CHECK_THAT(refusal_of([&] {
               rt::apply_grants(config_json(job_env(kP0)), kJob, {other}, fixed_stat, {});
             }),
             Catch::Equals(std::string("grant ") + kP0 +
                           ".jobId: belongs to another job than 'j-0123456789ab', got "
                           "'j-ffffffffffff'"));
}

TEST_CASE("no grants leave the config as it is, except NVIDIA's 'all' under its runtime",
          "[runtime]") {
  const rt::Json config = config_json(job_env(kP0));
  CHECK(rt::apply_grants(config, kJob, {}, fixed_stat, {}) == config);
  rt::ApplyOptions nvidia;
  nvidia.nvidia_runtime = true;
  const rt::Json out = rt::apply_grants(config, kJob, {}, fixed_stat, nvidia);
  CHECK(env_value(out, "NVIDIA_VISIBLE_DEVICES") == "void");
  CHECK(count_env(out, "NVIDIA_VISIBLE_DEVICES") == 1);
  CHECK(out["linux"] == config["linux"]);
}

TEST_CASE("a node the config already has is not added twice, its rule still is", "[runtime]") {
  rt::Json config = config_json(job_env(kP0));
  config["linux"]["devices"] = {{{"path", "/dev/nvidiactl"}, {"type", "c"}, {"major", 195},
                                 {"minor", 255}}};
  const rt::Json out = rt::apply_grants(config, kJob, {grant(kP0, 0, "GPU-aaaa")}, fixed_stat, {});
  size_t ctl = 0;
  for (const rt::Json &d : out["linux"]["devices"]) ctl += d["path"] == "/dev/nvidiactl";
  CHECK(ctl == 1);
  bool rule = false;
  for (const rt::Json &r : out["linux"]["resources"]["devices"]) {
    rule = rule || (r.contains("minor") && r["minor"] == 255 && r["allow"] == true);
  }
  CHECK(rule);
}

TEST_CASE("a config without linux sections gets them; a wrong shape is refused", "[runtime]") {
  rt::Json config = {{"process", {{"env", job_env(kP0)}}}};
  const rt::Json out = rt::apply_grants(config, kJob, {grant(kP0, 0, "GPU-aaaa")}, fixed_stat, {});
  CHECK(out["linux"]["devices"].size() == 4);
  CHECK(out["linux"]["resources"]["devices"].size() == 4);
  CHECK(out["mounts"].size() == 2);
  CHECK_FALSE(out["linux"].contains("namespaces"));

  config["linux"] = {{"devices", "none"}};
  CHECK_THAT(refusal_of([&] {
               rt::apply_grants(config, kJob, {grant(kP0, 0, "GPU-aaaa")}, fixed_stat, {});
             }),
             Catch::Contains("config.json: linux.devices: not an array, got string"));
}

TEST_CASE("a device node that cannot be stat'ed refuses the container", "[runtime]") {
  rt::Json g = grant_json(kP0, 0, "GPU-aaaa");
  g["devices"][0]["hostPath"] = "/dev/nvidia7";
  CHECK_THAT(refusal_of([&] {
               rt::apply_grants(config_json(job_env(kP0)), kJob,
                                {rt::parse_grant(g.dump(), kP0)}, fixed_stat, {});
             }),
             Catch::StartsWith("device /dev/nvidia7: cannot stat"));
}

// ---- files ----

TEST_CASE("grant files: all, none, or a refusal", "[runtime]") {
  TempDir dir;
  const uid_t me = ::geteuid();
  write_file(dir.file(std::string(kP0) + ".json"), grant_json(kP0, 0, "GPU-aaaa").dump());
  ::chmod(dir.file(std::string(kP0) + ".json").c_str(), 0600);
  const std::vector<rt::Grant> one = rt::load_grants(dir.path(), {kP0}, me);
  REQUIRE(one.size() == 1);
  CHECK(one[0].uuid == "GPU-aaaa");
  CHECK(rt::load_grants(dir.path(), {kP1}, me).empty());
  CHECK(rt::load_grants(dir.path() + "/absent", {kP0, kP1}, me).empty());
  CHECK_THAT(refusal_of([&] { rt::load_grants(dir.path(), {kP0, kP1}, me); }),
             Catch::Equals(std::string("grants: ") + kP1 + " missing from " + dir.path() +
                           ", got 1 of 2"));
  CHECK_THAT(refusal_of([&] { rt::load_grants(dir.path(), {kP0}, me + 1); }),
             Catch::Contains("not owned by uid " + std::to_string(me + 1)));
  ::chmod(dir.file(std::string(kP0) + ".json").c_str(), 0620);
  CHECK_THAT(refusal_of([&] { rt::load_grants(dir.path(), {kP0}, me); }),
             Catch::Contains("writable by group or others, got mode 0620"));
  ::chmod(dir.file(std::string(kP0) + ".json").c_str(), 0602);
  CHECK_THAT(refusal_of([&] { rt::load_grants(dir.path(), {kP0}, me); }),
             Catch::Contains("got mode 0602"));

  REQUIRE(::symlink(dir.file(std::string(kP0) + ".json").c_str(),
                    dir.file(std::string(kP1) + ".json").c_str()) == 0);
  CHECK_THAT(refusal_of([&] { rt::load_grants(dir.path(), {kP1}, me); }),
             Catch::Contains("is a symbolic link"));
  ::unlink(dir.file(std::string(kP1) + ".json").c_str());
  REQUIRE(::mkfifo(dir.file(std::string(kP1) + ".json").c_str(), 0600) == 0);
  CHECK_THAT(refusal_of([&] { rt::load_grants(dir.path(), {kP1}, me); }),
             Catch::Contains("not a regular file"));
}

TEST_CASE("device nodes are stat'ed on the host, anything else is refused", "[runtime]") {
  const rt::DeviceNode null_dev = rt::stat_device("/dev/null");
  CHECK(null_dev.type == 'c');
  CHECK(null_dev.major == 1);
  CHECK(null_dev.minor == 3);
  TempDir dir;
  write_file(dir.file("plain"), "x");
  CHECK_THAT(refusal_of([&] { rt::stat_device(dir.file("plain")); }),
             Catch::Contains("not a device node"));
  CHECK_THAT(refusal_of([&] { rt::stat_device(dir.file("absent")); }),
             Catch::Contains("cannot stat"));
}

TEST_CASE("config.json is replaced atomically and keeps its mode", "[runtime]") {
  TempDir dir;
  const std::string path = dir.file("config.json");
  write_file(path, "{}");
  ::chmod(path.c_str(), 0640);
  rt::write_file_atomically(path, "{\"a\":1}");
  CHECK(read_file(path) == "{\"a\":1}");
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  const chronos_test::ProcResult ls = run_process({"/bin/ls", "-A", dir.path()});
  CHECK(ls.out == "config.json\n");  // no temporary file left behind
}

TEST_CASE("runc is searched on the path, skipping this executable itself", "[runtime]") {
  TempDir a;
  TempDir b;
  TempDir c;
  write_file(a.file("runc"), "#!/bin/sh\n");  // not executable
  write_file(c.file("runc"), "#!/bin/sh\n");
  ::chmod(c.file("runc").c_str(), 0755);
  // A wrapper installed as `runc` must not find itself.
  char self[4096] = {};
  REQUIRE(::readlink("/proc/self/exe", self, sizeof self - 1) > 0);
  REQUIRE(::symlink(self, b.file("runc").c_str()) == 0);
  CHECK(rt::find_runc(a.path() + ":" + b.path() + "::" + c.path()) == c.file("runc"));
  CHECK_THAT(refusal_of([&] { rt::find_runc(a.path() + ":" + b.path()); }),
             Catch::StartsWith("runc: not found in"));
}

namespace {

/** A bundle directory and a grants directory for prepare_bundle() and the real wrapper. */
struct Bundle {
  TempDir bundle;
  TempDir grants;
  std::string config_path() const { return bundle.file("config.json"); }
  void write_config(const rt::Json &config) const { write_file(config_path(), config.dump(2)); }
  void write_grant(const rt::Json &g) const {
    const std::string path = grants.file(g["partitionId"].get<std::string>() + ".json");
    write_file(path, g.dump());
    ::chmod(path.c_str(), 0600);
  }
  rt::Invocation invocation() const {
    return rt::parse_invocation({"--cumulus-grants=" + grants.path(), "--cumulus-runc=/bin/true",
                                 "create", "--bundle", bundle.path(), "id"},
                                no_env);
  }
};

/** A grant whose nodes are real (/dev/null, /dev/zero stand in for the GPU's). */
rt::Json real_node_grant(const std::string &partition) {
  rt::Json g = grant_json(partition, 0, "GPU-aaaa");
  g["devices"] = {{{"path", "/dev/nvidia0"}, {"hostPath", "/dev/null"}},
                  {{"path", "/dev/nvidiactl"}, {"hostPath", "/dev/zero"}}};
  return g;
}

}  // namespace

TEST_CASE("prepare_bundle rewrites a job's config and leaves every other file alone",
          "[runtime]") {
  Bundle b;
  b.write_grant(real_node_grant(kP0));

  SECTION("a job with its grant") {
    b.write_config(config_json(job_env(kP0)));
    CHECK(rt::prepare_bundle(b.invocation()) == rt::BundleOutcome::kRewritten);
    const rt::Json out = rt::Json::parse(read_file(b.config_path()));
    REQUIRE(out["linux"]["devices"].size() == 2);
    CHECK(out["linux"]["devices"][1]["major"] == 1);
    CHECK(out["linux"]["devices"][1]["minor"] == 5);
    CHECK(env_value(out, "CUDA_VISIBLE_DEVICES") == "0");
  }
  SECTION("a container without CUMULUS_JOB_ID naming the partition") {
    b.write_config(config_json({"PATH=/bin", std::string("CUMULUS_PARTITION_IDS=") + kP0}));
    const std::string before = read_file(b.config_path());
    struct stat st_before;
    REQUIRE(::stat(b.config_path().c_str(), &st_before) == 0);
    CHECK(rt::prepare_bundle(b.invocation()) == rt::BundleOutcome::kUntouched);
    struct stat st_after;
    REQUIRE(::stat(b.config_path().c_str(), &st_after) == 0);
    CHECK(read_file(b.config_path()) == before);
    CHECK(st_after.st_ino == st_before.st_ino);  // not even rewritten with the same bytes
  }
  SECTION("a job whose partitions have no grants here") {
    b.write_config(config_json(job_env(kP1)));
    const std::string before = read_file(b.config_path());
    CHECK(rt::prepare_bundle(b.invocation()) == rt::BundleOutcome::kUntouched);
    CHECK(read_file(b.config_path()) == before);
  }
  SECTION("the same job under nvidia-container-runtime gets NVIDIA_VISIBLE_DEVICES=void") {
    b.write_config(config_json(job_env(kP1)));
    rt::Invocation inv = b.invocation();
    inv.runtime_path = "/usr/bin/nvidia-container-runtime";
    CHECK(rt::prepare_bundle(inv) == rt::BundleOutcome::kRewritten);
    CHECK(env_value(rt::Json::parse(read_file(b.config_path())), "NVIDIA_VISIBLE_DEVICES") ==
          "void");
  }
  SECTION("no config.json at all is runc's to report") {
    CHECK(rt::prepare_bundle(b.invocation()) == rt::BundleOutcome::kUntouched);
  }
}

// ---- the built executable ----

TEST_CASE("the wrapper execs the runtime with runc's argv and its own flags removed",
          "[runtime]") {
  Bundle b;
  TempDir tools;
  const std::string record = tools.file("argv");
  const std::string fake = tools.file("fake-runc");
  write_file(fake, "#!/bin/sh\nprintf '%s\\n' \"$0\" \"$@\" > " + record + "\n");
  ::chmod(fake.c_str(), 0755);
  b.write_grant(real_node_grant(kP0));
  b.write_config(config_json(job_env(kP0)));
  const chronos_test::ProcResult r =
      run_process({CHRONOS_GPU_RUNC_PATH, "--root", "/r", "--cumulus-grants=" + b.grants.path(),
                   "--cumulus-runc=" + fake, "create", "--bundle", b.bundle.path(), "ctr"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(read_file(record) ==
        fake + "\n--root\n/r\ncreate\n--bundle\n" + b.bundle.path() + "\nctr\n");
  CHECK(env_value(rt::Json::parse(read_file(b.config_path())), "CUMULUS_GPU_UUIDS") ==
        "GPU-aaaa");
}

TEST_CASE("the wrapper refuses with one line on stderr and in runc's json log", "[runtime]") {
  Bundle b;
  TempDir tools;
  rt::Json g = real_node_grant(kP0);
  g["jobId"] = "j-ffffffffffff";
  b.write_grant(g);
  b.write_config(config_json(job_env(kP0)));
  const std::string log = tools.file("log.json");
  const chronos_test::ProcResult r = run_process(
      {CHRONOS_GPU_RUNC_PATH, "--log", log, "--log-format", "json",
       "--cumulus-grants=" + b.grants.path(), "--cumulus-runc=/bin/true", "create", "--bundle",
       b.bundle.path(), "ctr"});
  CHECK(r.exit_code == 1);
  const std::string expected = std::string("cumulus-gpu-runc: grant ") + kP0 +
                               ".jobId: belongs to another job than 'j-0123456789ab', got "
                               "'j-ffffffffffff'";
  CHECK(r.err == expected + "\n");
  const rt::Json entry = rt::Json::parse(read_file(log));
  CHECK(entry["level"] == "error");
  CHECK(entry["msg"] == expected);
  CHECK(env_value(rt::Json::parse(read_file(b.config_path())), "CUDA_VISIBLE_DEVICES") ==
        "<unset>");
}
