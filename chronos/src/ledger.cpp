#include "ledger.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

namespace chronos {
namespace {

// Fit test for the state as it will be at time t (partitions/waiters alive after t).
struct FitCheck {
  bool capacity_ok;
  bool fair_ok;
  uint64_t allocated;
  uint64_t own;
};

FitCheck check_at(const State &state, const Request &req, const Policy &policy, int64_t t) {
  uint64_t allocated = 0;
  uint64_t own = 0;
  bool others = false;
  for (const Partition &p : state.partitions) {
    if (p.device != req.device || p.expires_ms <= t) continue;
    allocated += p.ppm;
    if (p.owner == req.owner) {
      own += p.ppm;
    } else {
      others = true;
    }
  }
  for (const Waiter &w : state.waiters) {
    if (w.device == req.device && w.until_ms > t && w.owner != req.owner) others = true;
  }
  FitCheck c{};
  c.allocated = allocated;
  c.own = own;
  c.capacity_ok = allocated + req.ppm <= kWholePpm;
  c.fair_ok = !others || own + req.ppm <= policy.max_share_ppm;
  return c;
}

std::string fmt_fraction(uint64_t ppm) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(ppm) / kWholePpm);
  std::string s(buf);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

uint32_t fraction_to_ppm(double fraction) {
  if (!std::isfinite(fraction) || fraction <= 0.0 || fraction > 1.0) return 0;
  const double scaled = std::round(fraction * kWholePpm);
  if (scaled < 1.0) return 0;
  return static_cast<uint32_t>(std::min<double>(scaled, kWholePpm));
}

double ppm_to_fraction(uint32_t ppm) { return static_cast<double>(ppm) / kWholePpm; }

std::vector<Partition> reclaim_expired(State &state, int64_t now_ms) {
  std::vector<Partition> gone;
  std::vector<Partition> live;
  live.reserve(state.partitions.size());
  for (Partition &p : state.partitions) {
    if (p.expires_ms <= now_ms) {
      gone.push_back(std::move(p));
    } else {
      live.push_back(std::move(p));
    }
  }
  state.partitions = std::move(live);
  state.waiters.erase(std::remove_if(state.waiters.begin(), state.waiters.end(),
                                     [now_ms](const Waiter &w) { return w.until_ms <= now_ms; }),
                      state.waiters.end());
  return gone;
}

uint64_t allocated_ppm(const State &state, uint32_t device) {
  uint64_t sum = 0;
  for (const Partition &p : state.partitions) {
    if (p.device == device) sum += p.ppm;
  }
  return sum;
}

uint64_t owner_ppm(const State &state, uint32_t device, const std::string &owner) {
  uint64_t sum = 0;
  for (const Partition &p : state.partitions) {
    if (p.device == device && p.owner == owner) sum += p.ppm;
  }
  return sum;
}

bool others_present(const State &state, uint32_t device, const std::string &owner) {
  for (const Partition &p : state.partitions) {
    if (p.device == device && p.owner != owner) return true;
  }
  for (const Waiter &w : state.waiters) {
    if (w.device == device && w.owner != owner) return true;
  }
  return false;
}

const Partition *find_by_job(const State &state, const std::string &job_id) {
  if (job_id.empty()) return nullptr;
  for (const Partition &p : state.partitions) {
    if (p.job_id == job_id) return &p;
  }
  return nullptr;
}

Admission admit(const State &state, const Request &req, const Policy &policy, int64_t now_ms) {
  Admission a;
  const FitCheck now = check_at(state, req, policy, now_ms);
  if (now.capacity_ok && now.fair_ok) return a;

  // Earliest fit: the request can only start fitting when something on this device goes away,
  // so the candidates are the expiry times of its partitions and waiters (assuming no new ones).
  std::set<int64_t> times;
  for (const Partition &p : state.partitions) {
    if (p.device == req.device && p.expires_ms > now_ms) times.insert(p.expires_ms);
  }
  for (const Waiter &w : state.waiters) {
    if (w.device == req.device && w.until_ms > now_ms) times.insert(w.until_ms);
  }
  for (int64_t t : times) {
    const FitCheck later = check_at(state, req, policy, t);
    if (later.capacity_ok && later.fair_ok) {
      a.earliest_fit_ms = t;
      break;
    }
  }

  std::ostringstream why;
  if (!now.capacity_ok) {
    a.verdict = Admission::Verdict::kNoCapacity;
    why << "device " << req.device << " has " << fmt_fraction(kWholePpm - now.allocated)
        << " free, requested " << fmt_fraction(req.ppm);
  } else {
    a.verdict = Admission::Verdict::kFairShare;
    why << "owner '" << req.owner << "' would hold " << fmt_fraction(now.own + req.ppm)
        << " of device " << req.device << ", above the fair-share limit of "
        << fmt_fraction(policy.max_share_ppm) << " while other owners hold or wait for it";
  }
  if (a.earliest_fit_ms >= 0) {
    const int64_t wait_ms = a.earliest_fit_ms - now_ms;
    why << "; earliest fit in " << wait_ms / 1000 << "." << (wait_ms % 1000) / 100
        << " s (at " << a.earliest_fit_ms << " ms)";
  }
  a.reason = why.str();
  return a;
}

void note_waiter(State &state, const Request &req, const Policy &policy, int64_t now_ms) {
  for (Waiter &w : state.waiters) {
    if (w.device == req.device && w.owner == req.owner) {
      w.ppm = req.ppm;
      w.until_ms = now_ms + policy.waiter_ttl_ms;
      return;
    }
  }
  state.waiters.push_back(Waiter{req.owner, req.device, req.ppm, now_ms + policy.waiter_ttl_ms});
}

void clear_waiter(State &state, uint32_t device, const std::string &owner) {
  state.waiters.erase(std::remove_if(state.waiters.begin(), state.waiters.end(),
                                     [&](const Waiter &w) {
                                       return w.device == device && w.owner == owner;
                                     }),
                      state.waiters.end());
}

std::string check_invariants(const State &state) {
  std::set<std::string> ids;
  std::set<std::string> jobs;
  std::vector<uint64_t> sums;
  for (const Partition &p : state.partitions) {
    if (!ids.insert(p.id).second) return "duplicate partition id " + p.id;
    if (!p.job_id.empty() && !jobs.insert(p.job_id).second) {
      return "two partitions for job " + p.job_id;
    }
    if (p.ppm == 0 || p.ppm > kWholePpm) return "partition " + p.id + " has a bad fraction";
    if (p.expires_ms <= p.start_ms) return "partition " + p.id + " expires before it starts";
    if (sums.size() <= p.device) sums.resize(p.device + 1, 0);
    sums[p.device] += p.ppm;
    if (sums[p.device] > kWholePpm) {
      return "device " + std::to_string(p.device) + " is allocated above 1.0";
    }
  }
  return "";
}

}  // namespace chronos
