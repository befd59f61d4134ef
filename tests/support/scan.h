// Reads every event of a closed store straight from LMDB, for checks that
// must not trust the code under test.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "codec/record.h"
#include "lighthouse/lighthouse.h"
#include "lmdb/lmdb.h"
#include "store/schema.h"

namespace lighthouse::testing {

struct ScannedStore {
  std::vector<RecordedEvent> events;  // in key order
  std::map<std::string, std::uint64_t> heads;
};

// REQUIRES: the store is not open in this process.
inline ScannedStore scan(const std::filesystem::path& path) {
  lmdb::Env env;
  lmdb::check(mdb_env_set_maxdbs(env.get(), 8), "maxdbs");
  lmdb::check(mdb_env_set_mapsize(env.get(), std::size_t{1} << 34), "mapsize");
  lmdb::check(mdb_env_open(env.get(), path.c_str(), MDB_RDONLY, 0600), "open");
  lmdb::Txn txn(env.get(), true);
  MDB_dbi events, heads, by_aggregate;
  lmdb::check(mdb_dbi_open(txn.get(), schema::kEvents, 0, &events), "events");
  lmdb::check(mdb_dbi_open(txn.get(), schema::kAggregateHeads, 0, &heads), "heads");
  lmdb::check(mdb_dbi_open(txn.get(), schema::kByAggregate, 0, &by_aggregate), "by_aggregate");
  ScannedStore out;
  {
    lmdb::Cursor cursor(txn.get(), events);
    MDB_val k, v;
    for (bool ok = cursor.seek(k, v, MDB_FIRST); ok; ok = cursor.seek(k, v, MDB_NEXT)) {
      out.events.push_back(codec::decode_record(EventId::from_key(lmdb::view(k)), lmdb::view(v)));
    }
  }
  // A head is the last entry of an aggregate in by_aggregate, or the one kept
  // in aggregate_heads for an aggregate whose events were all truncated.
  lmdb::Cursor kept(txn.get(), heads);
  MDB_val k, v;
  for (bool ok = kept.seek(k, v, MDB_FIRST); ok; ok = kept.seek(k, v, MDB_NEXT)) {
    out.heads[std::string(lmdb::view(k))] = schema::read_be(lmdb::view(v), 8);
  }
  lmdb::Cursor cursor(txn.get(), by_aggregate);
  for (bool ok = cursor.seek(k, v, MDB_FIRST); ok; ok = cursor.seek(k, v, MDB_NEXT_NODUP)) {
    MDB_val last_k = k, last_v;
    cursor.seek(last_k, last_v, MDB_LAST_DUP);
    out.heads[std::string(lmdb::view(k))] = schema::read_be(lmdb::view(last_v), 8);
  }
  return out;
}

// Checks sequences gap-free from 1, timestamps strictly increasing, every
// checksum and chain, and per-aggregate versions contiguous and matching the
// heads. Returns a description of the first problem, or "" when clean.
// The events a test appended: the store's own `$health.*` events (an SLA
// warning on a slow machine, say) are not among them.
inline std::vector<RecordedEvent> appended_events(const ScannedStore& s) {
  std::vector<RecordedEvent> out;
  for (const auto& e : s.events) {
    if (e.type.empty() || e.type[0] != '$') out.push_back(e);
  }
  return out;
}

inline std::string check_history(const ScannedStore& s) {
  Sha256 chain{};
  std::map<std::string, std::uint64_t> versions;
  for (std::size_t i = 0; i < s.events.size(); ++i) {
    const RecordedEvent& e = s.events[i];
    if (e.id.sequence != i + 1) return "sequence gap at " + e.id.to_string();
    if (i > 0 && e.id.timestamp_ns <= s.events[i - 1].id.timestamp_ns) {
      return "timestamp not increasing at " + e.id.to_string();
    }
    if (codec::event_checksum(e) != e.checksum) return "checksum of " + e.id.to_string();
    chain = codec::chain_next(chain, e.checksum);
    if (chain != e.chain) return "chain at " + e.id.to_string();
    if (!e.aggregate.empty()) {
      if (e.aggregate_version != ++versions[e.aggregate]) {
        return "version gap in " + e.aggregate + " at " + e.id.to_string();
      }
    }
  }
  if (versions != s.heads) return "aggregate heads differ from the events";
  return "";
}

}  // namespace lighthouse::testing
