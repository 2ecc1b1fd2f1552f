#include "engine.hpp"

#include <cmath>
#include <map>

#include <unistd.h>

#include "ids.hpp"
#include "json.hpp"
#include "status.hpp"

namespace chronos {
namespace {

std::string describe_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return format_fixed(v, 9);
}

}  // namespace

int64_t effective_uid() { return static_cast<int64_t>(::geteuid()); }

bool may_act_on(const Partition &p, int64_t caller) {
  return caller == 0 || p.uid < 0 || p.uid == caller;
}

Engine::Engine(Config config, DeviceSource devices, Clock clock,
               std::function<void()> after_temp_written, std::function<int64_t()> caller_uid)
    : config_(std::move(config)),
      source_(std::move(devices)),
      clock_(std::move(clock)),
      caller_uid_(std::move(caller_uid)),
      store_(StoreOptions{config_.state_dir, config_.lock_timeout_ms,
                          std::move(after_temp_written)}) {}

std::vector<DeviceInfo> Engine::devices(bool nowait) {
  std::lock_guard<std::mutex> guard(devices_mu_);
  if (!devices_loaded_) {
    if (nowait) throw Error(Status::kWouldBlock, "OpenCL devices are not discovered yet");
    // A failed discovery is not cached: a driver that comes up later is picked up then.
    devices_ = source_();
    devices_loaded_ = true;
  }
  return devices_;
}

PartitionOutcome Engine::create(uint32_t device, double memory, double duration_s,
                             const std::string &owner_in, const std::string &job_id,
                             bool nowait) {
  Request req;
  req.ppm = fraction_to_ppm(memory);
  if (req.ppm == 0) {
    throw Error(Status::kInvalidArgument,
                "memory must be a fraction in (0, 1] (at least 0.000001), got " +
                    describe_number(memory));
  }
  if (!std::isfinite(duration_s) || duration_s <= 0) {
    throw Error(Status::kInvalidArgument,
                "duration must be a positive number of seconds, got " + describe_number(duration_s));
  }
  const double ms = std::round(duration_s * 1000.0);
  if (ms < 1.0 || ms > static_cast<double>(config_.max_duration_ms)) {
    throw Error(Status::kInvalidArgument,
                "duration must be between 0.001 and " +
                    format_fixed(config_.max_duration_ms / 1000.0, 3) + " seconds, got " +
                    describe_number(duration_s));
  }
  req.duration_ms = static_cast<int64_t>(ms);
  req.owner = owner_in.empty() ? "anonymous" : owner_in;
  if (!valid_owner(req.owner)) {
    throw Error(Status::kInvalidArgument,
                "owner must be 1-64 characters of [A-Za-z0-9_.@-], got '" + req.owner + "'");
  }
  if (!job_id.empty() && !valid_job_id(job_id)) {
    throw Error(Status::kInvalidArgument,
                "job id must be 1-128 characters of [A-Za-z0-9_.:@-], got '" + job_id + "'");
  }
  req.job_id = job_id;
  const std::vector<DeviceInfo> devs = devices(nowait);
  if (device >= devs.size()) {
    throw Error(Status::kInvalidArgument,
                "unknown device " + std::to_string(device) + " (this host has " +
                    std::to_string(devs.size()) + " device" + (devs.size() == 1 ? "" : "s") +
                    ": 0.." + std::to_string(devs.size() - 1) + ")");
  }
  req.device = device;

  PartitionOutcome out;
  Admission refusal;
  bool refused = false;
  const int64_t caller = caller_uid_();
  std::string denied;
  store_.transact([&](State &state) {
    const int64_t now = clock_();
    out.now_ms = now;
    bool dirty = !reclaim_expired(state, now).empty();
    if (const Partition *same = find_by_job(state, req.job_id)) {
      if (!may_act_on(*same, caller)) {
        denied = "job " + req.job_id + " already holds partition " + same->id + ", made by uid " +
                 std::to_string(same->uid) + " (this caller is uid " + std::to_string(caller) +
                 ")";
        return dirty;
      }
      out.partition = *same;
      out.existing = true;
      return dirty;
    }
    const Admission a = admit(state, req, config_.policy, now);
    if (a.verdict != Admission::Verdict::kAdmit) {
      // Remember the refused owner as waiting, so fair share applies to the current holders.
      note_waiter(state, req, config_.policy, now);
      refusal = a;
      refused = true;
      return true;
    }
    Partition p;
    do {
      p.id = new_partition_id();
    } while ([&] {
      for (const Partition &q : state.partitions) {
        if (q.id == p.id) return true;
      }
      return false;
    }());
    p.device = req.device;
    p.ppm = req.ppm;
    p.start_ms = now;
    p.expires_ms = now + req.duration_ms;
    p.owner = req.owner;
    p.job_id = req.job_id;
    p.uid = caller;
    p.memory_bytes = static_cast<uint64_t>(static_cast<unsigned __int128>(
                                               devs[req.device].total_memory_bytes) *
                                           req.ppm / kWholePpm);
    clear_waiter(state, req.device, req.owner);
    state.partitions.push_back(p);
    out.partition = p;
    return true;
  }, nowait);
  if (!denied.empty()) throw Error(Status::kPermissionDenied, denied);
  if (refused) {
    const Status s = refusal.verdict == Admission::Verdict::kNoCapacity ? Status::kNoCapacity
                                                                        : Status::kFairShare;
    throw Error(s, refusal.reason, refusal.earliest_fit_ms);
  }
  return out;
}

PartitionOutcome Engine::release(const std::string &id, bool nowait) {
  if (!valid_partition_id(id)) {
    throw Error(Status::kInvalidArgument,
                "'" + id.substr(0, 64) + "' is not a partition id (expected p- and 12 hex digits)");
  }
  PartitionOutcome gone;
  bool found = false;
  bool denied = false;
  const int64_t caller = caller_uid_();
  store_.transact([&](State &state) {
    gone.now_ms = clock_();
    bool dirty = !reclaim_expired(state, gone.now_ms).empty();
    for (auto it = state.partitions.begin(); it != state.partitions.end(); ++it) {
      if (it->id == id) {
        gone.partition = *it;
        found = true;
        if (!may_act_on(*it, caller)) {
          denied = true;
          return dirty;
        }
        state.partitions.erase(it);
        return true;
      }
    }
    return dirty;
  }, nowait);
  if (denied) {
    throw Error(Status::kPermissionDenied,
                "partition " + id + " was made by uid " + std::to_string(gone.partition.uid) +
                    "; uid " + std::to_string(caller) +
                    " may release only its own partitions (root may release any)");
  }
  if (!found) {
    throw Error(Status::kNotFound,
                "no live partition " + id + " (it was released, has expired, or never existed)");
  }
  return gone;
}

ListOutcome Engine::list() {
  ListOutcome out;
  store_.transact([&](State &state) {
    out.now_ms = clock_();
    const bool dirty = !reclaim_expired(state, out.now_ms).empty();
    out.partitions = state.partitions;
    return dirty;
  });
  return out;
}

StatsOutcome Engine::stats() {
  StatsOutcome out;
  out.devices = devices();
  store_.transact([&](State &state) {
    out.now_ms = clock_();
    const bool dirty = !reclaim_expired(state, out.now_ms).empty();
    out.state = state;
    return dirty;
  });
  return out;
}

ListOutcome Engine::reap() {
  ListOutcome out;
  store_.transact([&](State &state) {
    out.now_ms = clock_();
    out.partitions = reclaim_expired(state, out.now_ms);
    return !out.partitions.empty();
  });
  return out;
}

RepairOutcome Engine::repair() { return store_.repair(); }

std::string partition_json(const Partition &p, int64_t now_ms) {
  JsonWriter w;
  write_partition(w, p, now_ms);
  return w.text();
}

std::string create_json(const PartitionOutcome &c) {
  JsonWriter w;
  write_partition(w, c.partition, c.now_ms);
  // Splice "existing" into the partition object so callers get one flat record.
  std::string s = w.text();
  s.pop_back();
  s += c.existing ? ",\"existing\":true}" : ",\"existing\":false}";
  return s;
}

std::string list_json(const ListOutcome &l, const char *array_key) {
  JsonWriter w;
  w.begin_object();
  w.key("now_ms").num(l.now_ms);
  w.key(array_key).begin_array();
  for (const Partition &p : l.partitions) write_partition(w, p, l.now_ms);
  w.end_array();
  w.end_object();
  return w.text();
}

std::string device_json(const DeviceInfo &d) {
  JsonWriter w;
  write_device(w, d);
  return w.text();
}

std::string stats_json(const StatsOutcome &s, const Config &config) {
  JsonWriter w;
  w.begin_object();
  w.key("version").str(CHRONOS_VERSION_STRING);
  w.key("now_ms").num(s.now_ms);
  w.key("state_dir").str(config.state_dir);
  w.key("config_path").str(config.config_path);
  w.key("policy").begin_object();
  w.key("max_share_per_owner").fixed(ppm_to_fraction(config.policy.max_share_ppm), 6);
  w.key("waiter_ttl_s").fixed(config.policy.waiter_ttl_ms / 1000.0, 3);
  w.key("lock_timeout_ms").num(config.lock_timeout_ms);
  w.key("device_types").str(device_types_name(config.device_types));
  w.end_object();
  w.key("devices").begin_array();
  for (const DeviceInfo &d : s.devices) {
    const uint64_t used = allocated_ppm(s.state, d.index);
    std::map<std::string, uint64_t> owners;
    size_t count = 0;
    for (const Partition &p : s.state.partitions) {
      if (p.device != d.index) continue;
      owners[p.owner] += p.ppm;
      ++count;
    }
    w.begin_object();
    w.key("index").num(d.index);
    w.key("name").str(d.name);
    w.key("vendor").str(d.vendor);
    w.key("platform").str(d.platform);
    w.key("type").str(d.type);
    w.key("total_memory_bytes").num(d.total_memory_bytes);
    w.key("pci_bus_id").str(d.pci_bus_id);
    w.key("allocated").fixed(ppm_to_fraction(static_cast<uint32_t>(used)), 6);
    w.key("free").fixed(ppm_to_fraction(static_cast<uint32_t>(kWholePpm - used)), 6);
    w.key("free_memory_bytes")
        .num(static_cast<uint64_t>(static_cast<unsigned __int128>(d.total_memory_bytes) *
                                   (kWholePpm - used) / kWholePpm));
    w.key("partitions").num(static_cast<uint64_t>(count));
    w.key("owners").begin_object();
    for (const auto &o : owners) {
      w.key(o.first.c_str()).fixed(ppm_to_fraction(static_cast<uint32_t>(o.second)), 6);
    }
    w.end_object();
    w.end_object();
  }
  w.end_array();
  w.key("partitions").num(static_cast<uint64_t>(s.state.partitions.size()));
  w.key("waiting").begin_array();
  for (const Waiter &x : s.state.waiters) {
    w.begin_object();
    w.key("owner").str(x.owner);
    w.key("device").num(x.device);
    w.key("memory").fixed(ppm_to_fraction(x.ppm), 6);
    w.key("until_ms").num(x.until_ms);
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return w.text();
}

std::string repair_json(const RepairOutcome &r) {
  JsonWriter w;
  w.begin_object();
  w.key("repaired").boolean(r.repaired);
  if (r.repaired) {
    w.key("kept").num(static_cast<uint64_t>(r.kept));
    w.key("dropped").num(static_cast<uint64_t>(r.dropped));
    w.key("moved_to").str(r.moved_to);
  }
  w.end_object();
  return w.text();
}

}  // namespace chronos
