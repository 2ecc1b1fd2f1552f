// chronos_cli: the command-line face of Chronos. Exit codes are the CHRONOS_* status codes of
// chronos.h (0 ok, 2 bad arguments, 3 unknown id, 4 no capacity, 5 fair share, ...); see
// docs/chronos.md. Errors are one line on stderr (and a JSON error object on stdout with --json).
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "chronos.h"
#include "config.hpp"
#include "device.hpp"
#include "engine.hpp"
#include "json.hpp"
#include "status.hpp"

namespace {

using chronos::Error;
using chronos::Status;

const char kUsage[] =
    "usage: chronos_cli [--state-dir DIR] [--config FILE] [--json] <command> [args]\n"
    "commands:\n"
    "  stats                                    devices, allocation, policy, waiting owners\n"
    "  create <device> <memory> <duration_s> [--owner U] [--job J]\n"
    "                                           reserve a fraction (0, 1] of a device\n"
    "  list                                     live partitions with their remaining time\n"
    "  release <partition_id>                   free a partition\n"
    "  reap                                     reclaim expired partitions now\n"
    "  repair                                   salvage a corrupt state file\n"
    "  probe <device> [--bytes N]               write and read back a buffer on a device\n"
    "  version                                  print the version\n"
    "exit codes: 0 ok, 1 internal, 2 bad arguments, 3 not found, 4 no capacity,\n"
    "  5 fair share, 6 state corrupt, 7 lock timeout, 8 I/O, 9 no device, 10 config,\n"
    "  13 permission denied (another uid's partition)\n";

struct Args {
  std::string command;
  std::vector<std::string> positional;
  std::string state_dir;
  std::string config;
  std::string owner;
  std::string job;
  std::string bytes;
  bool json = false;
  bool help = false;
};

Error usage_error(const std::string &message) {
  return Error(Status::kInvalidArgument, message + " (see chronos_cli --help)");
}

Args parse_args(int argc, char **argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char *flag) {
      if (i + 1 >= argc) throw usage_error(std::string(flag) + " needs a value");
      return std::string(argv[++i]);
    };
    if (arg == "--json") {
      a.json = true;
    } else if (arg == "--help" || arg == "-h") {
      a.help = true;
    } else if (arg == "--state-dir") {
      a.state_dir = value("--state-dir");
    } else if (arg == "--config") {
      a.config = value("--config");
    } else if (arg == "--owner") {
      a.owner = value("--owner");
    } else if (arg == "--job") {
      a.job = value("--job");
    } else if (arg == "--bytes") {
      a.bytes = value("--bytes");
    } else if (arg.compare(0, 2, "--") == 0) {
      throw usage_error("unknown option '" + arg + "'");
    } else if (a.command.empty()) {
      a.command = arg;
    } else {
      // A single leading '-' is a value ("-0.5"), rejected later with a precise reason.
      a.positional.push_back(arg);
    }
  }
  return a;
}

void expect_positional(const Args &a, size_t n, const char *shape) {
  if (a.positional.size() != n) {
    throw usage_error(std::string("'") + a.command + "' takes " + shape + ", got " +
                      std::to_string(a.positional.size()) + " argument(s)");
  }
}

uint32_t parse_device(const std::string &s) {
  bool digits = !s.empty() && s.size() <= 6;
  for (char c : s) digits = digits && c >= '0' && c <= '9';
  if (!digits) throw usage_error("device must be a non-negative integer index, got '" + s + "'");
  return static_cast<uint32_t>(std::strtoul(s.c_str(), nullptr, 10));
}

double parse_number(const std::string &s, const char *what, const char *range) {
  errno = 0;
  char *end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || errno == ERANGE || end == nullptr || *end != '\0' || !std::isfinite(v)) {
    throw usage_error(std::string(what) + " must be a number " + range + ", got '" + s + "'");
  }
  return v;
}

std::string human_bytes(uint64_t b) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string human_duration(int64_t ms) {
  if (ms < 0) ms = 0;
  char buf[48];
  if (ms < 60000) {
    std::snprintf(buf, sizeof buf, "%.1fs", ms / 1000.0);
  } else {
    const int64_t s = ms / 1000;
    if (s < 3600) {
      std::snprintf(buf, sizeof buf, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    } else {
      std::snprintf(buf, sizeof buf, "%" PRId64 "h%02" PRId64 "m%02" PRId64 "s", s / 3600,
                    (s / 60) % 60, s % 60);
    }
  }
  return buf;
}

std::string utc_time(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string frac(uint32_t ppm) { return chronos::format_fixed(chronos::ppm_to_fraction(ppm), 6); }

void print_partitions(const std::vector<chronos::Partition> &ps, int64_t now) {
  if (ps.empty()) {
    std::printf("no live partitions\n");
    return;
  }
  std::printf("%-14s  %3s  %-8s  %-16s  %-20s  %10s  %s\n", "ID", "DEV", "MEMORY", "OWNER", "JOB",
              "REMAINING", "EXPIRES (UTC)");
  for (const chronos::Partition &p : ps) {
    std::printf("%-14s  %3u  %-8s  %-16s  %-20s  %10s  %s\n", p.id.c_str(), p.device,
                frac(p.ppm).c_str(), p.owner.c_str(), p.job_id.empty() ? "-" : p.job_id.c_str(),
                human_duration(p.expires_ms - now).c_str(), utc_time(p.expires_ms).c_str());
  }
}

int run(const Args &a) {
  if (a.help || a.command.empty() || a.command == "help") {
    std::fputs(kUsage, a.help || a.command == "help" ? stdout : stderr);
    return a.help || a.command == "help" ? 0 : static_cast<int>(Status::kInvalidArgument);
  }
  if (a.command == "version") {
    expect_positional(a, 0, "no arguments");
    std::printf(a.json ? "{\"version\":\"%s\"}\n" : "%s\n", chronos_version());
    return 0;
  }
  // Validate the command's shape before touching configuration or state.
  const std::string &cmd = a.command;
  if (cmd == "stats" || cmd == "list" || cmd == "reap" || cmd == "repair") {
    expect_positional(a, 0, "no arguments");
  } else if (cmd == "create") {
    expect_positional(a, 3, "<device> <memory> <duration_s>");
  } else if (cmd == "release") {
    expect_positional(a, 1, "<partition_id>");
  } else if (cmd == "probe") {
    expect_positional(a, 1, "<device>");
  } else {
    throw usage_error("unknown command '" + cmd + "'");
  }
  if (cmd != "create" && (!a.owner.empty() || !a.job.empty())) {
    throw usage_error("--owner and --job only apply to 'create'");
  }

  uint32_t device = 0;
  double memory = 0;
  double duration = 0;
  if (cmd == "create" || cmd == "probe") device = parse_device(a.positional[0]);
  if (cmd == "create") {
    memory = parse_number(a.positional[1], "memory", "in (0, 1]");
    duration = parse_number(a.positional[2], "duration", "of seconds > 0");
  }

  const chronos::Config cfg = chronos::load_config(a.state_dir, a.config);
  chronos::Engine engine(cfg, chronos::opencl_device_source(cfg.device_types));

  if (cmd == "create") {
    std::string owner = a.owner;
    if (owner.empty()) {
      const char *user = std::getenv("USER");
      owner = (user != nullptr && *user != '\0') ? user : "anonymous";
    }
    const chronos::PartitionOutcome c = engine.create(device, memory, duration, owner, a.job);
    if (a.json) {
      std::printf("%s\n", chronos::create_json(c).c_str());
    } else {
      const chronos::Partition &p = c.partition;
      std::printf("%s %s on device %u: %s of the device (%s) for %s, owner %s%s%s\n",
                  c.existing ? "existing" : "created", p.id.c_str(), p.device,
                  frac(p.ppm).c_str(), human_bytes(p.memory_bytes).c_str(),
                  human_duration(p.expires_ms - c.now_ms).c_str(), p.owner.c_str(),
                  p.job_id.empty() ? "" : ", job ", p.job_id.c_str());
    }
  } else if (cmd == "release") {
    const chronos::PartitionOutcome r = engine.release(a.positional[0]);
    if (a.json) {
      std::printf("%s\n", chronos::partition_json(r.partition, r.now_ms).c_str());
    } else {
      std::printf("released %s (device %u, %s, owner %s)\n", r.partition.id.c_str(),
                  r.partition.device, frac(r.partition.ppm).c_str(), r.partition.owner.c_str());
    }
  } else if (cmd == "list") {
    const chronos::ListOutcome l = engine.list();
    if (a.json) {
      std::printf("%s\n", chronos::list_json(l).c_str());
    } else {
      print_partitions(l.partitions, l.now_ms);
    }
  } else if (cmd == "reap") {
    const chronos::ListOutcome l = engine.reap();
    if (a.json) {
      std::printf("%s\n", chronos::list_json(l, "reclaimed").c_str());
    } else {
      std::printf("reclaimed %zu expired partition(s)\n", l.partitions.size());
    }
  } else if (cmd == "repair") {
    const chronos::RepairOutcome r = engine.repair();
    if (a.json) {
      std::printf("%s\n", chronos::repair_json(r).c_str());
    } else if (r.repaired) {
      std::printf("repaired: kept %zu record(s), dropped %zu; damaged file kept at %s\n", r.kept,
                  r.dropped, r.moved_to.c_str());
    } else {
      std::printf("state file is fine; nothing to repair\n");
    }
  } else if (cmd == "probe") {
    size_t bytes = 1 << 20;
    if (!a.bytes.empty()) {
      const double b = parse_number(a.bytes, "--bytes", "of bytes >= 1");
      if (b < 1 || b > 1e12 || b != std::floor(b)) throw usage_error("--bytes out of range");
      bytes = static_cast<size_t>(b);
    }
    const chronos::ProbeResult r = chronos::probe_device(cfg.device_types, device, bytes);
    if (a.json) {
      chronos::JsonWriter w;
      w.begin_object().key("device").num(device).key("ok").boolean(r.ok);
      w.key("detail").str(r.detail).end_object();
      std::printf("%s\n", w.text().c_str());
    } else {
      std::printf("%s: %s\n", r.ok ? "ok" : "FAILED", r.detail.c_str());
    }
    if (!r.ok) {
      std::fprintf(stderr, "chronos_cli: probe of device %u failed: %s\n", device,
                   r.detail.c_str());
      return static_cast<int>(Status::kNoDevice);
    }
  } else {  // stats
    const chronos::StatsOutcome s = engine.stats();
    if (a.json) {
      std::printf("%s\n", chronos::stats_json(s, cfg).c_str());
    } else {
      std::printf("Chronos %s  state: %s  max share per owner (under contention): %s\n",
                  chronos_version(), cfg.state_dir.c_str(),
                  frac(cfg.policy.max_share_ppm).c_str());
      std::printf("%3s  %-6s  %-36s  %10s  %9s  %8s  %s\n", "DEV", "TYPE", "NAME", "TOTAL",
                  "ALLOCATED", "FREE", "PARTITIONS");
      for (const chronos::DeviceInfo &d : s.devices) {
        const uint64_t used = chronos::allocated_ppm(s.state, d.index);
        size_t n = 0;
        for (const auto &p : s.state.partitions) n += p.device == d.index ? 1 : 0;
        std::printf("%3u  %-6s  %-36.36s  %10s  %9s  %8s  %zu\n", d.index, d.type.c_str(),
                    d.name.c_str(), human_bytes(d.total_memory_bytes).c_str(),
                    frac(static_cast<uint32_t>(used)).c_str(),
                    frac(static_cast<uint32_t>(chronos::kWholePpm - used)).c_str(), n);
      }
      for (const chronos::Waiter &w : s.state.waiters) {
        std::printf("waiting: %s for %s of device %u (counted for another %s)\n",
                    w.owner.c_str(), frac(w.ppm).c_str(), w.device,
                    human_duration(w.until_ms - s.now_ms).c_str());
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  bool json = false;
  for (int i = 1; i < argc; ++i) json = json || std::string(argv[i]) == "--json";
  try {
    return run(parse_args(argc, argv));
  } catch (const Error &e) {
    std::fprintf(stderr, "chronos_cli: %s\n", e.what());
    if (json) {
      const Status s = e.status();
      std::printf("%s\n", chronos::error_json(static_cast<int>(s), chronos::status_name(s),
                                              e.what(), e.earliest_fit_ms())
                              .c_str());
    }
    return static_cast<int>(e.status());
  } catch (const std::exception &e) {
    std::fprintf(stderr, "chronos_cli: internal error: %s\n", e.what());
    return static_cast<int>(Status::kInternal);
  }
}
