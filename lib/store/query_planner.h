// The query planner: turns a Query into a key range on `events` and picks
// the index with the fewest candidates (mdb_cursor_count on DUPSORT keys,
// sequence arithmetic on the range), so no query walks the whole `events`
// database when an index applies.
#pragma once

#include <lmdb.h>

#include <optional>
#include <string>
#include <vector>

#include "lighthouse/query.h"
#include "lighthouse/options.h"
#include "lmdb/lmdb.h"
#include "store/schema.h"

namespace lighthouse {

using Key = std::string;  // a 20-byte event key

struct ResolvedQuery {
  Query query;
  Key lo;                  // inclusive lower bound
  std::optional<Key> hi;   // exclusive upper bound
  bool empty = false;      // the bounds admit nothing
  std::vector<std::string> types;  // by_type: every type to merge, in key order
  std::uint64_t min_version = 1;   // by_aggregate: versions to walk
  std::uint64_t max_version = 0;   // 0: no upper bound
  QueryPlan plan;
  ReadCheck verify_on_read = ReadCheck::fast;
  std::optional<Truncation> truncation;
  // Quorum mode: the replication high-water mark, past which nothing is
  // read (store/replication_gate.h).
  std::uint64_t max_sequence = UINT64_MAX;

  // Returns true iff `key` lies within [lo, hi).
  bool in_range(std::string_view key) const {
    return key >= std::string_view(lo) && (!hi || key < std::string_view(*hi));
  }
  // Returns true iff the event passes the non-range filters.
  bool matches(const RecordedEvent& e) const;
};

// Validates `query` against the store's Options::limits and plans it inside
// `txn`; Options::verify_on_read is the default of Query::verify_on_read.
ResolvedQuery plan_query(MDB_txn* txn, const Databases& dbs, const Query& query, const Options& options);
// The plan of read_aggregate(): walks `by_aggregate` over [from_version,
// to_version] (0: to the end).
ResolvedQuery plan_aggregate(MDB_txn* txn, const Databases& dbs, const std::string& aggregate,
                             std::uint64_t from_version, std::uint64_t to_version, const Options& options);

// The key of the first event whose sequence is >= `sequence`, found by
// bisecting timestamps (sequences and timestamps grow together): at most 64
// O(log n) seeks. Nothing when every event's sequence is smaller.
std::optional<Key> seek_sequence(MDB_txn* txn, MDB_dbi events, std::uint64_t sequence);

Key key_of(const EventId& id);
// The smallest key greater than `key`; nothing when `key` is all 0xff.
std::optional<Key> key_after(Key key);

}  // namespace lighthouse
