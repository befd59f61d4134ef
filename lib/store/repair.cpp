#include "store/repair.h"

#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "codec/record.h"

namespace lighthouse {
namespace {

// Keys of truncated events cannot be rebuilt from events: they are kept.
std::vector<std::pair<std::string, std::string>> dropped_keys(MDB_txn* t, const Databases& dbs) {
  std::vector<std::pair<std::string, std::string>> kept;
  lmdb::Cursor keys(t, dbs.by_idempotency_key);
  MDB_val k, v;
  for (bool ok = keys.seek(k, v, MDB_FIRST); ok; ok = keys.seek(k, v, MDB_NEXT)) {
    if (v.mv_size == schema::kDroppedIdempotencyEntrySize) kept.emplace_back(lmdb::view(k), lmdb::view(v));
  }
  return kept;
}

// What the walk over `events` found.
struct Rebuilt {
  std::map<std::string, std::uint64_t> heads;  // aggregate -> last version
  std::optional<RecordedEvent> last;          // the last event that decodes
  std::optional<EventId> last_id;             // the last event key
};

// Indexes every event that decodes; reports those that do not, or whose
// checksum fails (indexed as stored).
Rebuilt index_events(MDB_txn* t, const Databases& dbs, RepairReport& report) {
  Rebuilt r;
  // Cursors of a write transaction must be closed before it commits: this
  // one goes with the function.
  lmdb::Cursor cursor(t, dbs.events);
  MDB_val k, v;
  for (bool ok = cursor.seek(k, v, MDB_FIRST); ok; ok = cursor.seek(k, v, MDB_NEXT)) {
    const std::string key(lmdb::view(k));
    if (key.size() != EventId::kKeySize) {
      report.left_for_operator.push_back({"record", "key of " + std::to_string(key.size()) + " bytes", "not an event key"});
      continue;
    }
    const EventId id = EventId::from_key(key);
    r.last_id = id;
    RecordedEvent e;
    try {
      e = codec::decode_record(id, lmdb::view(v));
    } catch (const Error& error) {
      report.left_for_operator.push_back({"record", id.to_string(), error.what()});
      continue;
    }
    if (codec::event_checksum(e) != e.checksum) {
      report.left_for_operator.push_back(
          {"checksum", id.to_string(), "content does not match its checksum; indexed as stored"});
    }
    lmdb::put(t, dbs.by_type, e.type, key);
    if (!e.aggregate.empty()) {
      lmdb::put(t, dbs.by_aggregate, e.aggregate, schema::encode_aggregate_entry(e.aggregate_version, key));
      auto& head = r.heads[e.aggregate];
      head = std::max(head, e.aggregate_version);
    }
    if (e.idempotency_key) {
      lmdb::put(t, dbs.by_idempotency_key, *e.idempotency_key,
                schema::encode_idempotency_entry(key, codec::content_hash(codec::RecordFields::of(e))));
    }
    ++report.events_indexed;
    r.last = std::move(e);
  }
  return r;
}

// aggregate_heads keeps only aggregates without events (all truncated);
// returns how many aggregates the store has.
std::uint64_t prune_heads(MDB_txn* t, const Databases& dbs, const std::map<std::string, std::uint64_t>& heads) {
  std::uint64_t aggregates = heads.size();
  std::vector<std::string> derived;
  {
    lmdb::Cursor kept(t, dbs.aggregate_heads);
    MDB_val k, v;
    for (bool ok = kept.seek(k, v, MDB_FIRST); ok; ok = kept.seek(k, v, MDB_NEXT)) {
      std::string name(lmdb::view(k));
      if (heads.count(name) != 0) {
        derived.push_back(std::move(name));
      } else {
        ++aggregates;
      }
    }
  }
  for (const auto& name : derived) {
    MDB_val dk = lmdb::val(name);
    const lmdb::InLmdb inside(t);
    lmdb::check(mdb_del(t, dbs.aggregate_heads, &dk, nullptr), "mdb_del");
  }
  return aggregates;
}

}  // namespace

void rebuild_indexes(WritePath& writer, const Databases& dbs, RepairReport& report) {
  writer.write_exclusive([&](MDB_txn* t) {
    const auto kept_keys = dropped_keys(t, dbs);
    for (MDB_dbi dbi : {dbs.by_type, dbs.by_aggregate, dbs.by_idempotency_key}) {
      const lmdb::InLmdb inside(t);
      lmdb::check(mdb_drop(t, dbi, 0), "emptying an index");
    }
    for (const auto& [key, value] : kept_keys) lmdb::put(t, dbs.by_idempotency_key, key, value);
    report.events_indexed = 0;
    report.left_for_operator.clear();
    const Rebuilt r = index_events(t, dbs, report);
    const std::uint64_t aggregates = prune_heads(t, dbs, r.heads);
    if (r.last_id) {
      // Sequence and timestamp come from the last key, so that appends never
      // reuse them; the chain only when the last record decodes.
      lmdb::put(t, dbs.meta, schema::meta::kLastSequence, schema::be64(r.last_id->sequence));
      lmdb::put(t, dbs.meta, schema::meta::kLastTimestamp, schema::be64(r.last_id->timestamp_ns));
      if (r.last && r.last->id == *r.last_id) {
        lmdb::put(t, dbs.meta, schema::meta::kLastChain, schema::digest_view(r.last->chain));
      }
    }
    lmdb::put(t, dbs.meta, schema::meta::kAggregateCount, schema::be64(aggregates));
  });
}

}  // namespace lighthouse
