// Writing archived events into a store as they are.
#include "codec/record.h"
#include "store/schema.h"
#include "store/store_impl.h"

namespace lighthouse {

void Store::Impl::begin_import() {
  run_exclusive([this] {
    with_write_txn(
        [this](MDB_txn* t) { lmdb::put(t, dbs_.meta, schema::meta::kImportInProgress, "1"); });
  });
}

void Store::Impl::end_import() {
  run_exclusive([this] {
    with_write_txn([this](MDB_txn* t) {
      MDB_val k = lmdb::val(schema::meta::kImportInProgress);
      int rc = mdb_del(t, dbs_.meta, &k, nullptr);
      if (rc != MDB_NOTFOUND) lmdb::check(rc, "clearing the import mark");
    });
  });
}

void Store::Impl::import_events(const std::vector<RecordedEvent>& events) {
  run_exclusive([&] {
    with_write_txn([&](MDB_txn* t) {
      std::string_view v;
      std::uint64_t last_sequence = 0, last_ts = 0, aggregates = 0;
      Sha256 chain{};
      if (lmdb::get(t, dbs_.meta, schema::meta::kLastSequence, v))
        last_sequence = schema::read_be(v, 8);
      if (lmdb::get(t, dbs_.meta, schema::meta::kLastTimestamp, v)) last_ts = schema::read_be(v, 8);
      if (lmdb::get(t, dbs_.meta, schema::meta::kAggregateCount, v))
        aggregates = schema::read_be(v, 8);
      if (lmdb::get(t, dbs_.meta, schema::meta::kLastChain, v) && v.size() == 32) {
        std::copy(v.begin(), v.end(), reinterpret_cast<char*>(chain.data()));
      }
      std::string record;
      for (const RecordedEvent& e : events) {
        const std::string where = "archived event " + e.id.to_string();
        if (e.id.sequence != last_sequence + 1 || e.id.timestamp_ns <= last_ts) {
          throw Error(ErrorCode::invalid_argument,
                      where + " does not follow the store's last event (sequence " +
                          std::to_string(last_sequence) + ")");
        }
        if (codec::chain_next(chain, e.checksum) != e.chain) {
          throw Error(ErrorCode::corruption, where + ": chain does not follow the store's");
        }
        const auto key_array = e.id.to_key();
        const std::string key(reinterpret_cast<const char*>(key_array.data()), key_array.size());
        if (!e.aggregate.empty()) {
          lmdb::Cursor c(t, dbs_.by_aggregate);
          MDB_val ak = lmdb::val(e.aggregate), av;
          std::uint64_t head = 0;
          bool kept = false;
          if (c.seek(ak, av, MDB_SET) && c.seek(ak, av, MDB_LAST_DUP)) {
            head = schema::read_be(lmdb::view(av), 8);
          } else if (std::string_view stored;
                     lmdb::get(t, dbs_.aggregate_heads, e.aggregate, stored) &&
                     stored.size() == 8) {
            head = schema::read_be(stored, 8);  // all of its events were truncated
            kept = true;
          }
          if (head == 0) ++aggregates;
          if (kept) {
            MDB_val hk = lmdb::val(e.aggregate);
            lmdb::check(mdb_del(t, dbs_.aggregate_heads, &hk, nullptr), "mdb_del aggregate_heads");
          }
          if (e.aggregate_version != head + 1) {
            throw Error(ErrorCode::corruption, where + ": version " +
                                                   std::to_string(e.aggregate_version) +
                                                   " does not follow " + std::to_string(head));
          }
          lmdb::put(t, dbs_.by_aggregate, e.aggregate, schema::be64(e.aggregate_version) + key,
                    MDB_APPENDDUP);
        }
        codec::encode_record(record, codec::RecordFields::of(e), e.checksum, e.chain,
                             {options_.compression_threshold, options_.compression_level});
        lmdb::put(t, dbs_.events, key, record, MDB_APPEND);
        lmdb::put(t, dbs_.by_type, e.type, key, MDB_APPENDDUP);
        if (e.idempotency_key) {
          Sha256 hash = codec::content_hash(codec::RecordFields::of(e));
          lmdb::put(t, dbs_.by_idempotency_key, *e.idempotency_key,
                    key + std::string(reinterpret_cast<const char*>(hash.data()), 32),
                    MDB_NOOVERWRITE);
        }
        last_sequence = e.id.sequence;
        last_ts = e.id.timestamp_ns;
        chain = e.chain;
      }
      lmdb::put(t, dbs_.meta, schema::meta::kLastSequence, schema::be64(last_sequence));
      lmdb::put(t, dbs_.meta, schema::meta::kLastTimestamp, schema::be64(last_ts));
      lmdb::put(t, dbs_.meta, schema::meta::kLastChain,
                std::string_view(reinterpret_cast<const char*>(chain.data()), 32));
      lmdb::put(t, dbs_.meta, schema::meta::kAggregateCount, schema::be64(aggregates));
    });
  });
}

}  // namespace lighthouse
