#include "store/write_txn.h"

#include <algorithm>
#include <limits>

#include "codec/record.h"

namespace lighthouse {

WriteTxn::WriteTxn(MDB_txn* txn, const Databases& dbs, const Options& options, std::uint32_t node_id,
                   std::uint64_t now)
    : txn_(txn), dbs_(dbs), options_(options), node_id_(node_id), now_(now), state_(schema::read_counters(txn, dbs)) {
  first_sequence_ = state_.last_sequence;
}

AppendResult WriteTxn::write(const Batch& batch, const codec::ContentHashes* hashes,
                             codec::TraceStamp stamp) {
  if (auto replay = check_idempotency(batch, hashes)) return std::move(*replay);
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
    if (!e.aggregate.empty() && heads_.find(e.aggregate) == heads_.end()) heads_.emplace(e.aggregate, read_head(e.aggregate));
  }
  AppendResult result;
  result.events.reserve(batch.events.size());
  try {
    for (std::size_t i = 0; i < batch.events.size(); ++i) {
      result.events.push_back(write_event(batch.events[i], hashes != nullptr ? &hashes[i] : nullptr, stamp));
    }
    if (batch.checkpoint) {
      // A consumer's checkpoint moves in the same transaction as the events.
      const auto key = batch.checkpoint->position.to_key();
      lmdb::put(txn_, dbs_.meta, schema::consumer_key(batch.checkpoint->consumer), schema::key_view(key));
    }
  } catch (const lmdb::LmdbError&) {
    throw;
  } catch (const std::exception& error) {
    // Part of the batch is written: only aborting the whole transaction
    // keeps it atomic.
    throw TransactionLost(ErrorCode::internal, std::string("append failed mid-batch: ") + error.what());
  }
  return result;
}

void WriteTxn::import(const std::vector<RecordedEvent>& events) {
  heads_.clear();
  for (const RecordedEvent& e : events) {
    const std::string where = "archived event " + e.id.to_string();
    if (e.id.sequence != state_.last_sequence + 1 || e.id.timestamp_ns <= state_.last_timestamp_ns) {
      throw Error(ErrorCode::invalid_argument, where + " does not follow the store's last event (sequence " +
                                                   std::to_string(state_.last_sequence) + ")");
    }
    if (codec::chain_next(state_.last_chain, e.checksum) != e.chain) {
      throw Error(ErrorCode::corruption, where + ": chain does not follow the store's");
    }
    Head* head = nullptr;
    if (!e.aggregate.empty()) {
      auto it = heads_.find(e.aggregate);
      if (it == heads_.end()) it = heads_.emplace(e.aggregate, read_head(e.aggregate)).first;
      head = &it->second;
      if (e.aggregate_version != head->version + 1) {
        throw Error(ErrorCode::corruption, where + ": version " + std::to_string(e.aggregate_version) +
                                               " does not follow " + std::to_string(head->version));
      }
    }
    const codec::RecordFields fields = codec::RecordFields::of(e);
    codec::encode_record(record_, e.id, fields, e.checksum, e.chain,
                         {options_.compression_threshold, options_.compression_level}, e.record_format);
    const EventId::Key key = e.id.to_key();
    const Sha256 hash = e.idempotency_key ? codec::content_hash(fields) : Sha256{};
    put_event(schema::key_view(key), record_, e.type, e.aggregate, head, e.aggregate_version,
              e.idempotency_key ? &*e.idempotency_key : nullptr, hash);
    state_.last_sequence = e.id.sequence;
    state_.last_timestamp_ns = e.id.timestamp_ns;
    state_.last_chain = e.chain;
  }
}

bool WriteTxn::finish() {
  if (state_.last_sequence == first_sequence_) return false;
  schema::write_counters(txn_, dbs_, state_);
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

WriteTxn::Head WriteTxn::read_head(std::string_view aggregate) {
  lmdb::Cursor& c = cursor(aggregate_cursor_, dbs_.by_aggregate);
  MDB_val k = lmdb::val(aggregate), v;
  if (c.seek(k, v, MDB_SET) && c.seek(k, v, MDB_LAST_DUP)) {
    return {schema::decode_aggregate_entry(lmdb::view(v), aggregate).version, false};
  }
  std::string_view stored;
  if (!lmdb::get(txn_, dbs_.aggregate_heads, aggregate, stored)) return {};
  return {schema::decode_aggregate_head(stored, aggregate), true};
}

std::optional<AppendResult> WriteTxn::check_idempotency(const Batch& batch, const codec::ContentHashes* hashes) {
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
    std::string_view bytes;
    if (!e.idempotency_key || !lmdb::get(txn_, dbs_.by_idempotency_key, *e.idempotency_key, bytes)) {
      if (!first_missing) first_missing = i;
      continue;
    }
    const schema::IdempotencyEntry entry = schema::decode_idempotency_entry(bytes, *e.idempotency_key);
    ++stored;
    if (!first_stored) first_stored = i;
    const EventId id = EventId::from_key(entry.key);
    const Sha256 content = hashes != nullptr ? hashes[i].content : codec::content_hash(e);
    if (entry.content_hash != schema::digest_view(content)) {
      throw Error(ErrorCode::idempotency_conflict, "idempotency key '" + *e.idempotency_key +
                                                       "' is already stored with different content (event " +
                                                       id.to_string() + ")")
          .with_index(i);
    }
    if (entry.dropped_version) {
      // The event was truncated: its entry keeps the version.
      replay.events.push_back({id, *entry.dropped_version});
      continue;
    }
    std::string_view record;
    if (!lmdb::get(txn_, dbs_.events, entry.key, record)) {
      throw Error(ErrorCode::corruption, "idempotency key '" + *e.idempotency_key + "' names event " +
                                             id.to_string() + ", which is not stored");
    }
    replay.events.push_back({id, codec::decode_record(id, record).aggregate_version});
  }
  if (stored == 0) return std::nullopt;
  if (stored == batch.events.size()) return replay;
  throw Error(ErrorCode::idempotency_conflict,
              "batch is partly stored: the idempotency key of event " + std::to_string(*first_stored) +
                  " is stored but event " + std::to_string(*first_missing) +
                  " is not (a retry must repeat the original batch exactly)")
      .with_index(*first_missing);
}

void WriteTxn::check_expectations(const Batch& batch) {
  for (const auto& expectation : batch.expectations) {
    const std::uint64_t current = read_head(expectation.aggregate).version;
    if (!expectation.expected.matches(current)) {
      throw Error(ErrorCode::wrong_expected_version, "aggregate '" + expectation.aggregate + "' is at version " +
                                                         std::to_string(current) + ", expected " +
                                                         expectation.expected.to_string())
          .with_aggregate(expectation.aggregate, current);
    }
  }
}

AppendedEvent WriteTxn::write_event(const EventData& e, const codec::ContentHashes* hashes,
                                    codec::TraceStamp stamp) {
  EventId id;
  id.sequence = state_.last_sequence + 1;
  id.timestamp_ns = std::max(now_, state_.last_timestamp_ns + 1);
  id.node_id = node_id_;
  std::uint64_t version = 0;
  Head* head = nullptr;
  if (!e.aggregate.empty()) {
    head = &heads_.at(e.aggregate);
    version = head->version + 1;
  }
  codec::RecordFields fields = codec::RecordFields::of(e, version);
  if (fields.trace_context == nullptr) {
    fields.trace_context = stamp.context;
    fields.traceparent_bytes = stamp.traceparent_bytes;
  }
  // The hashes over the event's content come from the appending thread;
  // here only a fixed 96 + 64 bytes are hashed (checksum and chain).
  const codec::ContentHashes computed = hashes != nullptr ? codec::ContentHashes{} : codec::content_hashes(fields);
  const codec::ContentHashes& h = hashes != nullptr ? *hashes : computed;
  const Sha256 chain = codec::seal_record(record_, id, fields, h, state_.last_chain,
                                          {options_.compression_threshold, options_.compression_level})
                           .chain;
  const EventId::Key key = id.to_key();
  const Sha256& hash = h.content;
  put_event(schema::key_view(key), record_, e.type, e.aggregate, head, version,
            e.idempotency_key ? &*e.idempotency_key : nullptr, hash);
  state_.last_sequence = id.sequence;
  state_.last_timestamp_ns = id.timestamp_ns;
  state_.last_chain = chain;
  return {id, version};
}

void WriteTxn::put_event(std::string_view key, std::string_view record, std::string_view type,
                         std::string_view aggregate, Head* head, std::uint64_t version,
                         const std::string* idempotency_key, const Sha256& content_hash) {
  put(cursor(events_cursor_, dbs_.events), key, record, MDB_APPEND);
  put(cursor(type_cursor_, dbs_.by_type), type, key, MDB_APPENDDUP);
  if (head != nullptr) {
    if (head->version == 0) ++state_.aggregate_count;
    char entry[schema::kAggregateEntrySize];
    schema::encode_aggregate_entry(entry, version, key);
    put(cursor(aggregate_cursor_, dbs_.by_aggregate), aggregate, std::string_view(entry, sizeof entry),
        MDB_APPENDDUP);
    if (head->kept) {
      // The aggregate has events again: its head is read from by_aggregate.
      MDB_val hk = lmdb::val(aggregate);
      const lmdb::InLmdb inside(txn_);
      lmdb::check(mdb_del(txn_, dbs_.aggregate_heads, &hk, nullptr), "mdb_del aggregate_heads");
    }
    head->version = version;
    head->kept = false;
  }
  if (idempotency_key != nullptr) {
    lmdb::put(txn_, dbs_.by_idempotency_key, *idempotency_key, schema::encode_idempotency_entry(key, content_hash),
              MDB_NOOVERWRITE);
  }
}

void WriteTxn::put(lmdb::Cursor& c, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = lmdb::val(key), v = lmdb::val(value);
  const lmdb::InLmdb inside(mdb_cursor_txn(c.get()));
  lmdb::check(mdb_cursor_put(c.get(), &k, &v, flags), "mdb_cursor_put");
}

}  // namespace lighthouse
