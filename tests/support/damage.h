// Damages a closed store behind Lighthouse's back, for integrity tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include "lmdb/lmdb.h"
#include "store/schema.h"

namespace lighthouse::testing {

// Runs `edit` inside a write transaction on the store's databases.
// REQUIRES: the store is not open in this process.
inline void damage(const std::filesystem::path& store,
                   const std::function<void(MDB_txn*, const Databases&)>& edit) {
  lmdb::Env env;
  lmdb::check(mdb_env_set_maxdbs(env.get(), 8), "maxdbs");
  lmdb::check(mdb_env_set_mapsize(env.get(), std::size_t{1} << 34), "mapsize");
  lmdb::check(mdb_env_open(env.get(), store.c_str(), 0, 0600), "open");
  lmdb::Txn txn(env.get(), false);
  Databases dbs;
  auto open = [&](const char* name) {
    MDB_dbi dbi;
    lmdb::check(mdb_dbi_open(txn.get(), name, 0, &dbi), name);
    return dbi;
  };
  dbs.events = open(schema::kEvents);
  dbs.by_type = open(schema::kByType);
  dbs.by_aggregate = open(schema::kByAggregate);
  dbs.aggregate_heads = open(schema::kAggregateHeads);
  dbs.by_idempotency_key = open(schema::kByIdempotencyKey);
  dbs.meta = open(schema::kMeta);
  edit(txn.get(), dbs);
  txn.commit();
}

inline std::string key_of(const EventId& id) {
  auto k = id.to_key();
  return std::string(reinterpret_cast<const char*>(k.data()), k.size());
}

inline void del(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value = {}) {
  MDB_val k = lmdb::val(key), v = lmdb::val(value);
  lmdb::check(mdb_del(txn, dbi, &k, value.empty() ? nullptr : &v), "mdb_del");
}

// Flips one byte inside every copy of `marker` in `file`; returns the count.
inline int flip_marker(const std::filesystem::path& file, const std::string& marker) {
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  int flipped = 0;
  for (auto pos = bytes.find(marker); pos != std::string::npos; pos = bytes.find(marker, pos + 1)) {
    bytes[pos + marker.size() / 2] ^= 0x20;
    ++flipped;
  }
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return flipped;
}

}  // namespace lighthouse::testing
