#include "state_codec.hpp"

#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <vector>

#include "ids.hpp"

namespace chronos {
namespace {

const char kHeader[] = "chronos-state 1";

std::vector<std::string> split_spaces(const std::string &line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    const size_t j = line.find(' ', i);
    if (j == std::string::npos) {
      out.push_back(line.substr(i));
      break;
    }
    out.push_back(line.substr(i, j - i));
    i = j + 1;
  }
  // "a  b" or a trailing space yields empty fields, which every parser below rejects.
  if (!line.empty() && line.back() == ' ') out.push_back("");
  return out;
}

bool parse_i64(const std::string &s, int64_t &out) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  errno = 0;
  char *end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  out = static_cast<int64_t>(v);
  return true;
}

bool parse_u32(const std::string &s, uint32_t max, uint32_t &out) {
  int64_t v = 0;
  if (!parse_i64(s, v) || v > static_cast<int64_t>(max)) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

// Parses one record line into state; returns "" or the problem.
std::string parse_record(const std::string &line, State &state) {
  const std::vector<std::string> f = split_spaces(line);
  if (f.empty()) return "empty line";
  if (f[0] == "P") {
    // A 10th field, the creator's uid, was added later; files without it still load.
    if (f.size() != 9 && f.size() != 10) {
      return "partition record needs 9 or 10 fields, has " + std::to_string(f.size());
    }
    Partition p;
    p.id = f[1];
    if (!valid_partition_id(p.id)) return "bad partition id '" + f[1] + "'";
    if (!parse_u32(f[2], kMaxDeviceIndex, p.device)) return "bad device '" + f[2] + "'";
    if (!parse_u32(f[3], kWholePpm, p.ppm) || p.ppm == 0) return "bad fraction '" + f[3] + "'";
    if (!parse_i64(f[4], p.start_ms)) return "bad start time '" + f[4] + "'";
    if (!parse_i64(f[5], p.expires_ms) || p.expires_ms <= p.start_ms) {
      return "bad expiry time '" + f[5] + "'";
    }
    p.owner = f[6];
    if (!valid_owner(p.owner)) return "bad owner '" + f[6] + "'";
    if (f[7] != "-") {
      if (!valid_job_id(f[7])) return "bad job id '" + f[7] + "'";
      p.job_id = f[7];
    }
    int64_t bytes = 0;
    if (!parse_i64(f[8], bytes)) return "bad memory size '" + f[8] + "'";
    p.memory_bytes = static_cast<uint64_t>(bytes);
    // "-": the creator is unknown.
    if (f.size() == 10 && f[9] != "-" && (!parse_i64(f[9], p.uid) || p.uid > 0xFFFFFFFFLL)) {
      return "bad uid '" + f[9] + "'";
    }
    state.partitions.push_back(std::move(p));
    return "";
  }
  if (f[0] == "W") {
    if (f.size() != 5) return "waiter record needs 5 fields, has " + std::to_string(f.size());
    Waiter w;
    w.owner = f[1];
    if (!valid_owner(w.owner)) return "bad owner '" + f[1] + "'";
    if (!parse_u32(f[2], kMaxDeviceIndex, w.device)) return "bad device '" + f[2] + "'";
    if (!parse_u32(f[3], kWholePpm, w.ppm) || w.ppm == 0) return "bad fraction '" + f[3] + "'";
    if (!parse_i64(f[4], w.until_ms)) return "bad time '" + f[4] + "'";
    state.waiters.push_back(std::move(w));
    return "";
  }
  return "unknown record type '" + f[0].substr(0, 16) + "'";
}

// Splits into lines; reports whether the text ended with a newline.
std::vector<std::string> split_lines(const std::string &text, bool &ends_with_newline) {
  std::vector<std::string> lines;
  size_t i = 0;
  while (i < text.size()) {
    const size_t j = text.find('\n', i);
    if (j == std::string::npos) {
      lines.push_back(text.substr(i));
      ends_with_newline = false;
      return lines;
    }
    lines.push_back(text.substr(i, j - i));
    i = j + 1;
  }
  ends_with_newline = true;
  return lines;
}

std::string line_error(size_t line_no, const std::string &what) {
  return "line " + std::to_string(line_no) + ": " + what;
}

}  // namespace

uint32_t crc32(const char *data, size_t len) {
  // A function-local static is initialised exactly once, thread-safely (C++11).
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; ++i) {
    crc = table[(crc ^ static_cast<unsigned char>(data[i])) & 0xFF] ^ (crc >> 8);
  }
  return crc ^ 0xFFFFFFFFu;
}

std::string serialize_state(const State &state) {
  std::string out;
  out.reserve(64 + 96 * (state.partitions.size() + state.waiters.size()));
  out += kHeader;
  out += '\n';
  char num[128];
  for (const Partition &p : state.partitions) {
    std::snprintf(num, sizeof num, " %u %u %" PRId64 " %" PRId64 " ", p.device, p.ppm,
                  p.start_ms, p.expires_ms);
    out += "P ";
    out += p.id;
    out += num;
    out += p.owner;
    out += ' ';
    out += p.job_id.empty() ? "-" : p.job_id;
    std::snprintf(num, sizeof num, " %" PRIu64 " ", p.memory_bytes);
    out += num;
    out += p.uid < 0 ? std::string("-") : std::to_string(p.uid);  // "-": creator unknown
    out += '\n';
  }
  for (const Waiter &w : state.waiters) {
    std::snprintf(num, sizeof num, " %u %u %" PRId64, w.device, w.ppm, w.until_ms);
    out += "W ";
    out += w.owner;
    out += num;
    out += '\n';
  }
  const uint32_t crc = crc32(out.data(), out.size());
  std::snprintf(num, sizeof num, "end %zu %08x\n", state.partitions.size() + state.waiters.size(),
                crc);
  out += num;
  return out;
}

ParseResult parse_state(const std::string &text) {
  ParseResult r;
  if (text.empty()) {
    r.error = "file is empty (a complete state file always has a header and a trailer)";
    return r;
  }
  if (text.size() > kMaxStateBytes) {
    r.error = "file is larger than " + std::to_string(kMaxStateBytes) + " bytes";
    return r;
  }
  if (text.find('\0') != std::string::npos) {
    r.error = "file contains NUL bytes";
    return r;
  }
  bool nl = false;
  const std::vector<std::string> lines = split_lines(text, nl);
  if (lines[0] != kHeader) {
    r.error = line_error(1, "expected header '" + std::string(kHeader) + "'");
    return r;
  }
  if (!nl || lines.size() < 2 || lines.back().compare(0, 4, "end ") != 0) {
    r.error = "file is truncated (no 'end' trailer)";
    return r;
  }
  const std::vector<std::string> trailer = split_spaces(lines.back());
  int64_t count = 0;
  if (trailer.size() != 3 || !parse_i64(trailer[1], count) || trailer[2].size() != 8) {
    r.error = line_error(lines.size(), "malformed trailer");
    return r;
  }
  const size_t body_len = text.size() - lines.back().size() - 1;
  char want[9];
  std::snprintf(want, sizeof want, "%08x", crc32(text.data(), body_len));
  if (trailer[2] != want) {
    r.error = line_error(lines.size(), "checksum mismatch (file was modified or damaged)");
    return r;
  }
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    const std::string problem = parse_record(lines[i], r.state);
    if (!problem.empty()) {
      r.error = line_error(i + 1, problem);
      return r;
    }
  }
  if (static_cast<size_t>(count) != lines.size() - 2) {
    r.error = line_error(lines.size(), "trailer counts " + std::to_string(count) +
                                           " records, file has " +
                                           std::to_string(lines.size() - 2));
    return r;
  }
  const std::string violation = check_invariants(r.state);
  if (!violation.empty()) {
    r.error = "ledger invariant broken: " + violation;
    return r;
  }
  r.ok = true;
  return r;
}

SalvageResult salvage_state(const std::string &text) {
  SalvageResult s;
  bool nl = false;
  const std::vector<std::string> lines =
      text.empty() ? std::vector<std::string>{} : split_lines(text, nl);
  std::set<std::string> ids;
  std::set<std::string> jobs;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string &line = lines[i];
    if (i == 0 && line == kHeader) continue;
    if (line.compare(0, 4, "end ") == 0 || line.empty()) continue;
    State one;
    if (!parse_record(line, one).empty()) {
      ++s.dropped;
      continue;
    }
    if (!one.partitions.empty()) {
      const Partition &p = one.partitions[0];
      // Keep a record only if the ledger stays valid with it: damage must never make Chronos
      // over-admit a device.
      const bool dup = ids.count(p.id) != 0 || (!p.job_id.empty() && jobs.count(p.job_id) != 0);
      if (dup || allocated_ppm(s.state, p.device) + p.ppm > kWholePpm) {
        ++s.dropped;
        continue;
      }
      ids.insert(p.id);
      if (!p.job_id.empty()) jobs.insert(p.job_id);
      s.state.partitions.push_back(p);
    } else {
      s.state.waiters.push_back(one.waiters[0]);
    }
    ++s.kept;
  }
  return s;
}

}  // namespace chronos
