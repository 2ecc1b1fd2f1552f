// A small JSON writer and the JSON shapes Chronos emits (C ABI, CLI --json, agent).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "device.hpp"
#include "ledger.hpp"

namespace chronos {

/** Streaming JSON writer; commas are inserted automatically. */
class JsonWriter {
 public:
  JsonWriter &begin_object();
  JsonWriter &end_object();
  JsonWriter &begin_array();
  JsonWriter &end_array();
  JsonWriter &key(const char *name);
  JsonWriter &str(const std::string &v);
  JsonWriter &num(int64_t v);
  JsonWriter &num(uint64_t v);
  JsonWriter &num(uint32_t v) { return num(static_cast<uint64_t>(v)); }
  /** A fraction or a time with at most `decimals` decimals, trailing zeros trimmed. */
  JsonWriter &fixed(double v, int decimals);
  JsonWriter &boolean(bool v);
  JsonWriter &null();
  /** Inserts already-serialised JSON as one value. */
  JsonWriter &raw(const std::string &json);
  const std::string &text() const { return out_; }

 private:
  void before_value();
  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

/** Escapes a string for a JSON string literal (without the quotes). */
std::string json_escape(const std::string &s);

/** Formats v with `decimals` decimals, trailing zeros trimmed ("0.5", "12"). */
std::string format_fixed(double v, int decimals);

/** One partition, with its remaining time at now_ms. */
void write_partition(JsonWriter &w, const Partition &p, int64_t now_ms);

/** One device. */
void write_device(JsonWriter &w, const DeviceInfo &d);

/** {"error":{"code":..,"status":..,"message":..[,"earliest_fit_ms":..]}} */
std::string error_json(int status, const char *code, const std::string &message,
                       int64_t earliest_fit_ms);

}  // namespace chronos
