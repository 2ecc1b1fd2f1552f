#include "ids.hpp"

#include <cstdint>
#include <random>

namespace chronos {
namespace {

bool all_of_charset(const std::string &s, const char *extra) {
  for (char c : s) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    bool ok = alnum;
    for (const char *e = extra; !ok && *e != '\0'; ++e) ok = (c == *e);
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string new_partition_id() {
  // random_device reads getrandom(2) on Linux, so ids from concurrent processes never collide
  // by construction of a shared seed (the ledger still checks for duplicates).
  static const char kHex[] = "0123456789abcdef";
  std::random_device rd;
  uint64_t bits = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  std::string id = "p-";
  for (int i = 0; i < 12; ++i) {
    id.push_back(kHex[bits & 0xF]);
    bits >>= 4;
  }
  return id;
}

bool valid_partition_id(const std::string &id) {
  if (id.size() != 14 || id.compare(0, 2, "p-") != 0) return false;
  for (size_t i = 2; i < id.size(); ++i) {
    const char c = id[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool valid_owner(const std::string &owner) {
  return !owner.empty() && owner.size() <= 64 && all_of_charset(owner, "_.@-");
}

bool valid_job_id(const std::string &job_id) {
  return !job_id.empty() && job_id.size() <= 128 && all_of_charset(job_id, "_.:@-");
}

}  // namespace chronos
