#include "store/schema.h"

#include <algorithm>
#include <random>

#include "lighthouse/error.h"
#include "lighthouse/version.h"
#include "lmdb/lmdb.h"
#include "text.h"

namespace lighthouse::schema {
namespace {

[[noreturn]] void damaged(const std::string& what) { throw Error(ErrorCode::corruption, what); }

std::string quoted(std::string_view name) { return text::quoted(name); }

std::uint32_t random_node_id() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint32_t> dist(1, 0xffffffffu);
  return dist(rd);
}

// A meta value of the size `key` requires, or nothing when absent.
std::optional<std::string_view> sized(MDB_txn* txn, const Databases& dbs, std::string_view key) {
  std::string_view value;
  if (!lmdb::get(txn, dbs.meta, key, value)) return std::nullopt;
  const std::size_t want = meta_value_size(key);
  if (want != 0 && value.size() != want) {
    damaged("meta '" + std::string(key) + "' has " + std::to_string(value.size()) + " bytes, expected " +
            std::to_string(want));
  }
  return value;
}

Sha256 digest_of(std::string_view bytes) {
  Sha256 d;
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(d.data()));
  return d;
}

}  // namespace

bool is_store_database(std::string_view name) noexcept {
  return name == kMeta || name == kEvents || name == kByType || name == kByAggregate || name == kAggregateHeads ||
         name == kByIdempotencyKey;
}

std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

std::string be32(std::uint32_t v) {
  std::string out(4, '\0');
  for (int i = 3; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

std::uint64_t read_be(std::string_view bytes, std::size_t width) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < width; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

EventId decode_event_key(std::string_view key, std::string_view where) {
  if (key.size() != EventId::kKeySize) {
    damaged(std::string(where) + ": an event key of " + std::to_string(key.size()) + " bytes, not " +
            std::to_string(EventId::kKeySize));
  }
  return EventId::from_key(key);
}

void encode_aggregate_entry(char (&out)[kAggregateEntrySize], std::uint64_t version, std::string_view event_key) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(version >> (56 - 8 * i));
  std::copy(event_key.begin(), event_key.end(), out + 8);
}

std::string encode_aggregate_entry(std::uint64_t version, std::string_view event_key) {
  char entry[kAggregateEntrySize];
  encode_aggregate_entry(entry, version, event_key);
  return std::string(entry, sizeof entry);
}

std::string aggregate_entry_bound(std::uint64_t version) {
  return be64(version) + std::string(EventId::kKeySize, '\0');
}

AggregateEntry decode_aggregate_entry(std::string_view bytes, std::string_view aggregate) {
  if (bytes.size() != kAggregateEntrySize) {
    damaged("by_aggregate entry of " + quoted(aggregate) + " is damaged (" + std::to_string(bytes.size()) +
            " bytes, not " + std::to_string(kAggregateEntrySize) + ")");
  }
  return {read_be(bytes, 8), bytes.substr(8)};
}

std::uint64_t decode_aggregate_head(std::string_view bytes, std::string_view aggregate) {
  if (bytes.size() != 8) damaged("aggregate head of " + quoted(aggregate) + " is not 8 bytes");
  return read_be(bytes, 8);
}

std::string encode_idempotency_entry(std::string_view event_key, const Sha256& content_hash) {
  std::string out;
  out.reserve(kIdempotencyEntrySize);
  out.append(event_key);
  out.append(digest_view(content_hash));
  return out;
}

std::string encode_dropped_idempotency_entry(std::string_view event_key, std::string_view content_hash,
                                             std::uint64_t version) {
  std::string out;
  out.reserve(kDroppedIdempotencyEntrySize);
  out.append(event_key);
  out.append(content_hash);
  out.append(be64(version));
  return out;
}

IdempotencyEntry decode_idempotency_entry(std::string_view bytes, std::string_view idempotency_key) {
  if (bytes.size() != kIdempotencyEntrySize && bytes.size() != kDroppedIdempotencyEntrySize) {
    damaged("idempotency entry of key " + quoted(idempotency_key) + " is damaged (" + std::to_string(bytes.size()) +
            " bytes)");
  }
  IdempotencyEntry entry{bytes.substr(0, EventId::kKeySize), bytes.substr(EventId::kKeySize, 32), std::nullopt};
  if (bytes.size() == kDroppedIdempotencyEntrySize) entry.dropped_version = read_be(bytes.substr(52), 8);
  return entry;
}

std::string consumer_key(std::string_view consumer) { return std::string(meta::kConsumerPrefix) + std::string(consumer); }

std::size_t meta_value_size(std::string_view key) noexcept {
  if (key == meta::kFormatVersion || key == meta::kNodeId) return 4;
  if (key == meta::kCreatedNs || key == meta::kLastSequence || key == meta::kLastTimestamp ||
      key == meta::kAggregateCount || key == meta::kBaseSequence) {
    return 8;
  }
  if (key == meta::kLastChain || key == meta::kBaseChain) return 32;
  if (key.substr(0, meta::kConsumerPrefix.size()) == meta::kConsumerPrefix) return EventId::kKeySize;
  return 0;
}

std::uint64_t read_u64(MDB_txn* txn, const Databases& dbs, std::string_view key, std::uint64_t missing) {
  auto value = sized(txn, dbs, key);
  return value ? read_be(*value, 8) : missing;
}

std::uint32_t read_u32(MDB_txn* txn, const Databases& dbs, std::string_view key, std::uint32_t missing) {
  auto value = sized(txn, dbs, key);
  return value ? static_cast<std::uint32_t>(read_be(*value, 4)) : missing;
}

std::optional<Sha256> read_digest(MDB_txn* txn, const Databases& dbs, std::string_view key) {
  auto value = sized(txn, dbs, key);
  if (!value) return std::nullopt;
  return digest_of(*value);
}

std::optional<std::string_view> read_replica_of(MDB_txn* txn, const Databases& dbs) {
  std::string_view value;
  if (!lmdb::get(txn, dbs.meta, meta::kReplicaOf, value)) return std::nullopt;
  return value;
}

std::optional<std::uint64_t> read_high_water(MDB_txn* txn, const Databases& dbs) {
  std::string_view value;
  if (!lmdb::get(txn, dbs.meta, meta::kHighWater, value)) return std::nullopt;
  std::uint64_t n = 0;
  bool ok = !value.empty() && value.size() <= 20;
  for (char c : value) {
    if (c < '0' || c > '9' || n > (UINT64_MAX - 9) / 10) {
      ok = false;
      break;
    }
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (!ok) damaged("meta '" + std::string(meta::kHighWater) + "' is not a sequence number");
  return n;
}

std::optional<EventId> read_checkpoint(MDB_txn* txn, const Databases& dbs, std::string_view consumer) {
  const std::string key = consumer_key(consumer);
  std::string_view value;
  if (!lmdb::get(txn, dbs.meta, key, value)) return std::nullopt;
  if (value.size() != EventId::kKeySize) {
    damaged("checkpoint of consumer '" + std::string(consumer) + "' is " + std::to_string(value.size()) +
            " bytes, not an event key");
  }
  return EventId::from_key(value);
}

Counters read_counters(MDB_txn* txn, const Databases& dbs) {
  Counters c;
  c.last_sequence = read_u64(txn, dbs, meta::kLastSequence, 0);
  c.last_timestamp_ns = read_u64(txn, dbs, meta::kLastTimestamp, 0);
  if (auto chain = read_digest(txn, dbs, meta::kLastChain)) {
    c.last_chain = *chain;
    c.has_last_chain = true;
  }
  c.aggregate_count = read_u64(txn, dbs, meta::kAggregateCount, 0);
  c.base_sequence = read_u64(txn, dbs, meta::kBaseSequence, 1);
  if (auto base = read_digest(txn, dbs, meta::kBaseChain)) c.base_chain = *base;
  return c;
}

void write_counters(MDB_txn* txn, const Databases& dbs, const Counters& c) {
  lmdb::put(txn, dbs.meta, meta::kLastSequence, be64(c.last_sequence));
  lmdb::put(txn, dbs.meta, meta::kLastTimestamp, be64(c.last_timestamp_ns));
  lmdb::put(txn, dbs.meta, meta::kLastChain, digest_view(c.last_chain));
  lmdb::put(txn, dbs.meta, meta::kAggregateCount, be64(c.aggregate_count));
}

Identity open_databases(MDB_txn* txn, const std::filesystem::path& path, const Options& options,
                        std::uint64_t now_ns) {
  const bool ro = options.read_only;
  auto open_db = [&](const char* name, unsigned flags) {
    MDB_dbi dbi;
    const lmdb::InLmdb inside(txn);
    int rc = mdb_dbi_open(txn, name, flags | (ro ? 0u : unsigned{MDB_CREATE}), &dbi);
    if (rc == MDB_NOTFOUND) {
      damaged("store '" + path.string() + "' has no '" + name + "' database: not a Lighthouse store");
    }
    lmdb::check(rc, std::string("opening database '") + name + "'");
    return dbi;
  };
  Identity id;
  id.dbs.meta = open_db(kMeta, 0);
  std::string_view version;
  const bool is_new = !lmdb::get(txn, id.dbs.meta, meta::kFormatVersion, version);
  if (is_new && ro) throw Error(ErrorCode::not_found, "no Lighthouse store at '" + path.string() + "'");
  if (is_new) {
    // A new store starts from an empty environment: one that holds anything
    // but Lighthouse's own databases belongs to someone else, and is left
    // untouched (the caller's transaction aborts).
    MDB_dbi main_db;
    const lmdb::InLmdb inside(txn);
    lmdb::check(mdb_dbi_open(txn, nullptr, 0, &main_db), "opening the main database");
    lmdb::Cursor names(txn, main_db);
    MDB_val k, v;
    for (bool ok = names.seek(k, v, MDB_FIRST); ok; ok = names.seek(k, v, MDB_NEXT)) {
      if (!is_store_database(lmdb::view(k))) {
        damaged("'" + path.string() +
                "' holds an LMDB environment that is not a Lighthouse store (it has data outside "
                "Lighthouse's databases)");
      }
    }
  } else {
    id.format_version = read_u32(txn, id.dbs, meta::kFormatVersion, 0);
    if (id.format_version == 0 || id.format_version > kFormatVersion) {
      throw Error(ErrorCode::unsupported_format, "store '" + path.string() + "' has format version " +
                                                     std::to_string(id.format_version) +
                                                     "; this Lighthouse reads up to " + std::to_string(kFormatVersion));
    }
  }
  id.dbs.events = open_db(kEvents, 0);
  id.dbs.by_type = open_db(kByType, MDB_DUPSORT | MDB_DUPFIXED);
  id.dbs.by_aggregate = open_db(kByAggregate, MDB_DUPSORT | MDB_DUPFIXED);
  id.dbs.aggregate_heads = open_db(kAggregateHeads, 0);
  id.dbs.by_idempotency_key = open_db(kByIdempotencyKey, 0);
  if (is_new && lmdb::entries(txn, id.dbs.events) != 0) {
    damaged("store '" + path.string() +
            "' holds events but no format version in 'meta' (run `lighthouse verify`; restore it from a backup)");
  }
  if (is_new) {
    id.format_version = kFormatVersion;
    id.node_id = options.node_id.value_or(random_node_id());
    lmdb::put(txn, id.dbs.meta, meta::kFormatVersion, be32(kFormatVersion));
    lmdb::put(txn, id.dbs.meta, meta::kNodeId, be32(id.node_id));
    lmdb::put(txn, id.dbs.meta, meta::kCreatedNs, be64(now_ns));
  } else {
    id.node_id = options.node_id.value_or(read_u32(txn, id.dbs, meta::kNodeId, 0));
  }
  std::string_view importing;
  id.importing = lmdb::get(txn, id.dbs.meta, meta::kImportInProgress, importing);
  return id;
}

}  // namespace lighthouse::schema
