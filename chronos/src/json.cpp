#include "json.hpp"

#include <cinttypes>
#include <cstdio>

namespace chronos {

std::string json_escape(const std::string &s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string format_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s(buf);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

void JsonWriter::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
}

JsonWriter &JsonWriter::begin_object() {
  before_value();
  out_ += '{';
  first_.push_back(true);
  return *this;
}

JsonWriter &JsonWriter::end_object() {
  out_ += '}';
  first_.pop_back();
  return *this;
}

JsonWriter &JsonWriter::begin_array() {
  before_value();
  out_ += '[';
  first_.push_back(true);
  return *this;
}

JsonWriter &JsonWriter::end_array() {
  out_ += ']';
  first_.pop_back();
  return *this;
}

JsonWriter &JsonWriter::key(const char *name) {
  before_value();
  out_ += '"';
  out_ += json_escape(name);
  out_ += "\":";
  after_key_ = true;
  return *this;
}

JsonWriter &JsonWriter::str(const std::string &v) {
  before_value();
  out_ += '"';
  out_ += json_escape(v);
  out_ += '"';
  return *this;
}

JsonWriter &JsonWriter::num(int64_t v) {
  before_value();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRId64, v);
  out_ += buf;
  return *this;
}

JsonWriter &JsonWriter::num(uint64_t v) {
  before_value();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRIu64, v);
  out_ += buf;
  return *this;
}

JsonWriter &JsonWriter::fixed(double v, int decimals) {
  before_value();
  out_ += format_fixed(v, decimals);
  return *this;
}

JsonWriter &JsonWriter::boolean(bool v) {
  before_value();
  out_ += v ? "true" : "false";
  return *this;
}

JsonWriter &JsonWriter::null() {
  before_value();
  out_ += "null";
  return *this;
}

JsonWriter &JsonWriter::raw(const std::string &json) {
  before_value();
  out_ += json;
  return *this;
}

void write_partition(JsonWriter &w, const Partition &p, int64_t now_ms) {
  const int64_t remaining = p.expires_ms > now_ms ? p.expires_ms - now_ms : 0;
  w.begin_object();
  w.key("id").str(p.id);
  w.key("device").num(p.device);
  w.key("memory").fixed(ppm_to_fraction(p.ppm), 6);
  w.key("memory_bytes").num(p.memory_bytes);
  w.key("owner").str(p.owner);
  w.key("job_id").str(p.job_id);
  w.key("uid").num(p.uid);
  w.key("start_ms").num(p.start_ms);
  w.key("expires_at_ms").num(p.expires_ms);
  w.key("duration_s").fixed(static_cast<double>(p.expires_ms - p.start_ms) / 1000.0, 3);
  w.key("remaining_s").fixed(static_cast<double>(remaining) / 1000.0, 3);
  w.end_object();
}

void write_device(JsonWriter &w, const DeviceInfo &d) {
  w.begin_object();
  w.key("index").num(d.index);
  w.key("name").str(d.name);
  w.key("vendor").str(d.vendor);
  w.key("platform").str(d.platform);
  w.key("type").str(d.type);
  w.key("driver_version").str(d.driver_version);
  w.key("opencl_version").str(d.opencl_version);
  w.key("total_memory_bytes").num(d.total_memory_bytes);
  w.key("pci_bus_id").str(d.pci_bus_id);
  w.end_object();
}

std::string error_json(int status, const char *code, const std::string &message,
                       int64_t earliest_fit_ms) {
  JsonWriter w;
  w.begin_object().key("error").begin_object();
  w.key("code").str(code);
  w.key("status").num(static_cast<int64_t>(status));
  w.key("message").str(message);
  if (earliest_fit_ms >= 0) w.key("earliest_fit_ms").num(earliest_fit_ms);
  w.end_object().end_object();
  return w.text();
}

}  // namespace chronos
