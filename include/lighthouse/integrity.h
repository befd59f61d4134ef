// Integrity: what verify() checks, what repair() rebuilds, and backups.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lighthouse/export.h"

namespace lighthouse {

// One problem verify() found.
struct IntegrityProblem {
  // What kind of problem: "record" (does not decode), "checksum", "chain",
  // "order" (IDs or timestamps not strictly increasing), "sequence" (a gap),
  // "aggregate_version" (not contiguous), "by_type", "by_aggregate",
  // "idempotency" (an index entry missing, extra, or naming the wrong event),
  // "meta" (a counter that disagrees with the data), "import" (an import
  // was interrupted), "structure" (the LMDB file's own structure: a damaged
  // page, reported with its number and database before LMDB reads it).
  std::string category;
  std::string subject;  // the event ID, or the index key, it is about
  std::string detail;
};

struct VerifyReport {
  std::uint64_t events_checked = 0;
  std::uint64_t index_entries_checked = 0;
  std::uint64_t pages_checked = 0;        // pages of the LMDB file walked by the structural check
  std::uint64_t problem_count = 0;        // every problem found
  std::vector<IntegrityProblem> problems;  // the first VerifyOptions::max_problems of them
  // Returns true iff no problem was found.
  bool ok() const noexcept { return problem_count == 0; }
};

struct VerifyOptions {
  std::size_t max_problems = 1000;
};

struct RepairReport {
  std::uint64_t events_indexed = 0;
  // Events left as they are because their record does not decode or their
  // checksum fails: repair never drops or rewrites an event.
  std::vector<IntegrityProblem> left_for_operator;
  VerifyReport before;  // what verify() found before the repair
  VerifyReport after;   // and after it
};

struct BackupReport {
  std::string path;              // the backup's data file
  std::uint64_t bytes = 0;       // its size
  std::uint64_t events = 0;      // events it holds (a prefix of the store's)
  double seconds = 0;            // time to copy, sync and verify
};

}  // namespace lighthouse
