#include "store/write_txn.h"

#include <algorithm>

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
  first_sequence_ = state_.last_sequence;
}

AppendResult WriteTxn::write(const Batch& batch) {
  if (auto replay = check_idempotency(batch)) return std::move(*replay);
  check_expectations(batch);
  AppendResult result;
  result.events.reserve(batch.events.size());
  for (const EventData& e : batch.events) result.events.push_back(write_event(e));
  return result;
}

bool WriteTxn::finish() {
  if (state_.last_sequence == first_sequence_) return false;
  lmdb::put(txn_, dbs_.meta, schema::meta::kLastSequence, schema::be64(state_.last_sequence));
  lmdb::put(txn_, dbs_.meta, schema::meta::kLastTimestamp, schema::be64(state_.last_timestamp_ns));
  lmdb::put(txn_, dbs_.meta, schema::meta::kLastChain, digest_view(state_.last_chain));
  return true;
}

std::uint64_t WriteTxn::head(std::string_view aggregate) {
  std::string_view v;
  if (!lmdb::get(txn_, dbs_.aggregate_heads, aggregate, v)) return 0;
  if (v.size() != 8) {
    throw Error(ErrorCode::corruption,
                "aggregate head of '" + std::string(aggregate) + "' is not 8 bytes");
  }
  return schema::read_be(v, 8);
}

std::optional<AppendResult> WriteTxn::check_idempotency(const Batch& batch) {
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
    if (entry.size() != schema::kIdempotencyEntrySize) {
      throw Error(ErrorCode::corruption,
                  "idempotency entry of key '" + *e.idempotency_key + "' is damaged");
    }
    ++stored;
    if (!first_stored) first_stored = i;
    if (entry.substr(20) != digest_view(codec::content_hash(e))) {
      throw Error(ErrorCode::idempotency_conflict,
                  "idempotency key '" + *e.idempotency_key +
                      "' is already stored with different content (event " +
                      EventId::from_key(entry.substr(0, 20)).to_string() + ")")
          .with_index(i);
    }
    EventId id = EventId::from_key(entry.substr(0, 20));
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
  RecordedEvent r;
  r.id.sequence = state_.last_sequence + 1;
  r.id.timestamp_ns = std::max(now_, state_.last_timestamp_ns + 1);
  r.id.node_id = node_id_;
  r.type = e.type;
  r.aggregate = e.aggregate;
  r.aggregate_version = e.aggregate.empty() ? 0 : head(e.aggregate) + 1;
  r.content_type = e.content_type;
  r.metadata = e.metadata;
  r.data = e.data;
  r.idempotency_key = e.idempotency_key;
  r.checksum = codec::event_checksum(r);
  r.chain = codec::chain_next(state_.last_chain, r.checksum);

  const EventId::Key key = r.id.to_key();
  const std::string_view k = key_view(key);
  codec::EncodeOptions encode{options_.compression_threshold, options_.compression_level};
  lmdb::put(txn_, dbs_.events, k, codec::encode_record(r, encode), MDB_APPEND);
  lmdb::put(txn_, dbs_.by_type, r.type, k, MDB_APPENDDUP);
  if (!r.aggregate.empty()) {
    lmdb::put(txn_, dbs_.by_aggregate, r.aggregate,
              schema::be64(r.aggregate_version) + std::string(k), MDB_APPENDDUP);
    lmdb::put(txn_, dbs_.aggregate_heads, r.aggregate, schema::be64(r.aggregate_version));
  }
  if (e.idempotency_key) {
    lmdb::put(txn_, dbs_.by_idempotency_key, *e.idempotency_key,
              std::string(k) + std::string(digest_view(codec::content_hash(e))), MDB_NOOVERWRITE);
  }
  state_.last_sequence = r.id.sequence;
  state_.last_timestamp_ns = r.id.timestamp_ns;
  state_.last_chain = r.chain;
  return {r.id, r.aggregate_version};
}

}  // namespace lighthouse
