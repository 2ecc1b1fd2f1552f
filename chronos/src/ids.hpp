// Identifiers and names: partition ids, owner and job-id validation.
#pragma once

#include <string>

namespace chronos {

/** A fresh random partition id: "p-" followed by 12 lower-case hex digits. */
std::string new_partition_id();

/** True for a syntactically valid partition id ("p-" + 12 hex digits). */
bool valid_partition_id(const std::string &id);

/** Owners are user names: 1..64 of [A-Za-z0-9_.@-] (same rule as the Cumulus job spec). */
bool valid_owner(const std::string &owner);

/** Job ids: 1..128 of [A-Za-z0-9_.:@-]. */
bool valid_job_id(const std::string &job_id);

}  // namespace chronos
