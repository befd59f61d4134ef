// Integrity: what verify() checks, what repair() rebuilds, and backups.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lighthouse/export.h"

namespace lighthouse {

// One problem verify() found.
struct IntegrityProblem {
  // What kind of problem: "record" (does not decode, or fails its fast
  // check while its checksum matches), "checksum", "chain",
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
  // Set when repair rebuilt nothing because the LMDB file's own structure is
  // damaged (rebuilding would write through it): what to do instead.
  std::string refused;
};

// A range of sequences, inclusive.
struct SequenceRange {
  std::uint64_t first = 0, last = 0;
};

// What salvage() made of a damaged store.
struct SalvageReport {
  std::string destination;
  std::uint64_t events_salvaged = 0;       // in the new store: sequences first..last
  std::uint64_t first_sequence = 0, last_sequence = 0;
  // Sequences of the old store that no readable, verified record holds,
  // from the first one missing to the last sequence its counters name.
  std::vector<SequenceRange> lost;
  std::uint64_t events_lost = 0;
  // Events read and verified but after the first lost one: a store's
  // sequences have no gaps, so they are not in the new store but in
  // `after_gap_file` (docs/formats.md, "Salvage files").
  std::uint64_t events_after_gap = 0;
  std::string after_gap_file;
  std::uint64_t records_damaged = 0;        // event records that did not decode or verify
  std::uint64_t pages_unreadable = 0;       // tree pages that could not be read
  bool scanned_pages = false;               // every page of the file was searched for events
  std::uint64_t checkpoints_salvaged = 0;   // consumers' checkpoints carried over
  // Returns true iff every event of the old store is in the new one.
  bool complete() const noexcept { return events_lost == 0 && events_after_gap == 0; }
};

struct BackupReport {
  std::string path;              // the backup's data file
  std::uint64_t bytes = 0;       // its size
  std::uint64_t events = 0;      // events it holds (a prefix of the store's)
  double seconds = 0;            // time to copy, sync and verify
};

}  // namespace lighthouse
