#include "store/write_txn.h"

#include <algorithm>
#include <limits>

#include "codec/record.h"
#include "store/schema.h"

namespace lighthouse {
namespace {

std::string_view key_view(const EventId::Key& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}

std::string_view digest_view(const Sha256& digest) {
  return {reinterpret_cast<const char*>(digest.data()), digest.size()};
}

}  // namespace

WriteTxn::WriteTxn(MDB_txn* txn, const Databases& dbs, const Options& options,
                   std::uint32_t node_id, std::uint64_t now)
    : txn_(txn), dbs_(dbs), options_(options), node_id_(node_id), now_(now) {
  std::string_view v;
  if (lmdb::get(txn_, dbs_.meta, schema::meta::kLastSequence, v) && v.size() == 8) {
    state_.last_sequence = schema::read_be(v, 8);
  }
  if (lmdb::get(txn_, dbs_.meta, schema::meta::kLastTimestamp, v) && v.size() == 8) {
    state_.last_timestamp_ns = schema::read_be(v, 8);
  }
  if (lmdb::get(txn_, dbs_.meta, schema::meta::kLastChain, v) && v.size() == 32) {
    std::copy(v.begin(), v.end(), reinterpret_cast<char*>(state_.last_chain.data()));
  }
  if (lmdb::get(txn_, dbs_.meta, schema::meta::kAggregateCount, v) && v.size() == 8) {
    state_.aggregate_count = schema::read_be(v, 8);
  }
  first_sequence_ = state_.last_sequence;
}

AppendResult WriteTxn::write(const Batch& batch) {
  if (auto replay = check_idempotency(batch)) return std::move(*replay);
  check_expectations(batch);
  // IDs only grow: a clock at the end of the 64-bit range leaves no room.
  const std::uint64_t n = batch.events.size();
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  if (std::max(now_, state_.last_timestamp_ns) > kMax - n || state_.last_sequence > kMax - n) {
    throw Error(ErrorCode::limit_exceeded,
                "no event ID is left after timestamp " + std::to_string(std::max(now_, state_.last_timestamp_ns)) +
                    " ns and sequence " + std::to_string(state_.last_sequence) +
                    ": the clock or the sequence is at the end of the 64-bit range");
  }
  // Everything that can fail on the stored state is read before the first
  // write, so that a failing batch has written nothing.
  heads_.clear();
  for (const EventData& e : batch.events) {
    if (!e.aggregate.empty() && heads_.find(e.aggregate) == heads_.end()) {
      Head h;
      h.version = head(e.aggregate, &h.kept);
      heads_.emplace(e.aggregate, h);
    }
  }
  AppendResult result;
  result.events.reserve(batch.events.size());
  try {
    for (const EventData& e : batch.events) result.events.push_back(write_event(e));
    if (batch.checkpoint) {
      // A consumer's checkpoint moves in the same transaction as the events.
      const auto key = batch.checkpoint->position.to_key();
      lmdb::put(txn_, dbs_.meta, std::string(schema::meta::kConsumerPrefix) + batch.checkpoint->consumer,
                std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
    }
  } catch (const lmdb::LmdbError&) {
    throw;
  } catch (const std::exception& error) {
    // Part of the batch is written: only aborting the whole transaction
    // keeps it atomic.
    throw lmdb::LmdbError(ErrorCode::internal, std::string("append failed mid-batch: ") + error.what(), -1);
  }
  return result;
}

bool WriteTxn::finish() {
  if (state_.last_sequence == first_sequence_) return false;
  lmdb::put(txn_, dbs_.meta, schema::meta::kLastSequence, schema::be64(state_.last_sequence));
  lmdb::put(txn_, dbs_.meta, schema::meta::kLastTimestamp, schema::be64(state_.last_timestamp_ns));
  lmdb::put(txn_, dbs_.meta, schema::meta::kLastChain, digest_view(state_.last_chain));
  lmdb::put(txn_, dbs_.meta, schema::meta::kAggregateCount, schema::be64(state_.aggregate_count));
  return true;
}

lmdb::Cursor& WriteTxn::cursor(std::unique_ptr<lmdb::Cursor>& slot, MDB_dbi dbi) {
  if (!slot) slot = std::make_unique<lmdb::Cursor>(txn_, dbi);
  return *slot;
}

void WriteTxn::close_cursors() noexcept {
  events_cursor_.reset();
  type_cursor_.reset();
  aggregate_cursor_.reset();
}

void WriteTxn::use_txn(MDB_txn* txn) noexcept {
  close_cursors();
  txn_ = txn;
}

// The last version of `aggregate`: its last entry in by_aggregate, or — when
// truncation dropped all of its events — the head kept in aggregate_heads.
std::uint64_t WriteTxn::head(std::string_view aggregate, bool* kept) {
  if (kept != nullptr) *kept = false;
  lmdb::Cursor& c = cursor(aggregate_cursor_, dbs_.by_aggregate);
  MDB_val k = lmdb::val(aggregate), v;
  if (c.seek(k, v, MDB_SET) && c.seek(k, v, MDB_LAST_DUP)) {
    if (v.mv_size != schema::kAggregateEntrySize) {
      throw Error(ErrorCode::corruption,
                  "by_aggregate entry of '" + std::string(aggregate) + "' is damaged");
    }
    return schema::read_be(lmdb::view(v), 8);
  }
  std::string_view stored;
  if (!lmdb::get(txn_, dbs_.aggregate_heads, aggregate, stored)) return 0;
  if (stored.size() != 8) {
    throw Error(ErrorCode::corruption,
                "aggregate head of '" + std::string(aggregate) + "' is not 8 bytes");
  }
  if (kept != nullptr) *kept = true;
  return schema::read_be(stored, 8);
}

std::optional<AppendResult> WriteTxn::check_idempotency(const Batch& batch) {
  if (std::none_of(batch.events.begin(), batch.events.end(),
                   [](const EventData& e) { return e.idempotency_key.has_value(); })) {
    return std::nullopt;
  }
  std::size_t stored = 0;
  std::optional<std::size_t> first_stored, first_missing;
  AppendResult replay;
  replay.replayed = true;
  for (std::size_t i = 0; i < batch.events.size(); ++i) {
    const EventData& e = batch.events[i];
    if (!e.idempotency_key) {
      if (!first_missing) first_missing = i;
      continue;
    }
    std::string_view entry;
    if (!lmdb::get(txn_, dbs_.by_idempotency_key, *e.idempotency_key, entry)) {
      if (!first_missing) first_missing = i;
      continue;
    }
    const bool dropped = entry.size() == schema::kDroppedIdempotencyEntrySize;
    if (entry.size() != schema::kIdempotencyEntrySize && !dropped) {
      throw Error(ErrorCode::corruption,
                  "idempotency entry of key '" + *e.idempotency_key + "' is damaged");
    }
    ++stored;
    if (!first_stored) first_stored = i;
    if (entry.substr(20, 32) != digest_view(codec::content_hash(e))) {
      throw Error(ErrorCode::idempotency_conflict,
                  "idempotency key '" + *e.idempotency_key +
                      "' is already stored with different content (event " +
                      EventId::from_key(entry.substr(0, 20)).to_string() + ")")
          .with_index(i);
    }
    EventId id = EventId::from_key(entry.substr(0, 20));
    if (dropped) {
      // The event was truncated: its entry keeps the version.
      replay.events.push_back({id, schema::read_be(entry.substr(52), 8)});
      continue;
    }
    std::string_view record;
    if (!lmdb::get(txn_, dbs_.events, entry.substr(0, 20), record)) {
      throw Error(ErrorCode::corruption, "idempotency key '" + *e.idempotency_key +
                                             "' names event " + id.to_string() +
                                             ", which is not stored");
    }
    replay.events.push_back({id, codec::decode_record(id, record).aggregate_version});
  }
  if (stored == 0) return std::nullopt;
  if (stored == batch.events.size()) return replay;
  throw Error(ErrorCode::idempotency_conflict,
              "batch is partly stored: the idempotency key of event " +
                  std::to_string(*first_stored) + " is stored but event " +
                  std::to_string(*first_missing) +
                  " is not (a retry must repeat the "
                  "original batch exactly)")
      .with_index(*first_missing);
}

void WriteTxn::check_expectations(const Batch& batch) {
  for (const auto& expectation : batch.expectations) {
    std::uint64_t current = head(expectation.aggregate);
    if (!expectation.expected.matches(current)) {
      throw Error(ErrorCode::wrong_expected_version,
                  "aggregate '" + expectation.aggregate + "' is at version " +
                      std::to_string(current) + ", expected " + expectation.expected.to_string())
          .with_aggregate(expectation.aggregate, current);
    }
  }
}

AppendedEvent WriteTxn::write_event(const EventData& e) {
  EventId id;
  id.sequence = state_.last_sequence + 1;
  id.timestamp_ns = std::max(now_, state_.last_timestamp_ns + 1);
  id.node_id = node_id_;
  std::uint64_t version = 0;
  bool kept_head = false;
  if (!e.aggregate.empty()) {
    Head& h = heads_.at(e.aggregate);
    kept_head = h.kept;
    if (h.version == 0) ++state_.aggregate_count;
    version = ++h.version;
    h.kept = false;
  }
  const codec::RecordFields fields{e.type,     e.aggregate, version, e.content_type,
                                   &e.metadata, e.data,     e.idempotency_key ? &*e.idempotency_key : nullptr};
  const Sha256 chain = codec::seal_record(record_, id, fields, state_.last_chain,
                                          {options_.compression_threshold, options_.compression_level})
                           .chain;

  const EventId::Key key = id.to_key();
  const std::string_view k = key_view(key);
  put(cursor(events_cursor_, dbs_.events), k, record_, MDB_APPEND);
  put(cursor(type_cursor_, dbs_.by_type), e.type, k, MDB_APPENDDUP);
  if (version != 0) {
    char entry[schema::kAggregateEntrySize];
    for (int i = 0; i < 8; ++i) entry[i] = static_cast<char>(version >> (56 - 8 * i));
    std::copy(k.begin(), k.end(), entry + 8);
    put(cursor(aggregate_cursor_, dbs_.by_aggregate), e.aggregate,
        std::string_view(entry, sizeof entry), MDB_APPENDDUP);
    if (kept_head) {
      // The aggregate has events again: its head is read from by_aggregate.
      MDB_val hk = lmdb::val(e.aggregate);
      lmdb::check(mdb_del(txn_, dbs_.aggregate_heads, &hk, nullptr), "mdb_del aggregate_heads");
    }
  }
  if (e.idempotency_key) {
    lmdb::put(txn_, dbs_.by_idempotency_key, *e.idempotency_key,
              std::string(k) + std::string(digest_view(codec::content_hash(e))), MDB_NOOVERWRITE);
  }
  state_.last_sequence = id.sequence;
  state_.last_timestamp_ns = id.timestamp_ns;
  state_.last_chain = chain;
  return {id, version};
}

void WriteTxn::put(lmdb::Cursor& c, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = lmdb::val(key), v = lmdb::val(value);
  lmdb::check(mdb_cursor_put(c.get(), &k, &v, flags), "mdb_cursor_put");
}

}  // namespace lighthouse
