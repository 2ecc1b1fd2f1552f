// The state file format (text, one record per line, CRC-protected trailer):
//
//   chronos-state 1
//   P <id> <device> <ppm> <start_ms> <expires_ms> <owner> <job_id or -> <memory_bytes>
//   W <owner> <device> <ppm> <until_ms>
//   end <record count> <crc32 of every byte before this line, 8 hex digits>
//
// Owners and job ids never contain spaces (see ids.hpp), so no escaping is needed. The trailer
// makes a truncated or edited file detectable; parse() never trusts a file without it.
#pragma once

#include <string>

#include "ledger.hpp"

namespace chronos {

/** Largest state file accepted; anything bigger is treated as corrupt. */
constexpr size_t kMaxStateBytes = 16u << 20;

/** Highest device index a state file may mention. */
constexpr uint32_t kMaxDeviceIndex = 4095;

/** Result of parsing: ok, or the first problem with its 1-based line number. */
struct ParseResult {
  bool ok = false;
  State state;
  std::string error;  ///< e.g. "line 3: bad fraction 'x'"
};

/** Result of salvaging a damaged file record by record. */
struct SalvageResult {
  State state;
  size_t kept = 0;
  size_t dropped = 0;
};

/** Serialises a state into the file format. */
std::string serialize_state(const State &state);

/** Parses a whole file strictly (header, every record, trailer, CRC, ledger invariants). */
ParseResult parse_state(const std::string &text);

/** Keeps every well-formed record of a damaged file that still satisfies the invariants. */
SalvageResult salvage_state(const std::string &text);

/** CRC-32 (IEEE 802.3, as zlib). */
uint32_t crc32(const char *data, size_t len);

}  // namespace chronos
