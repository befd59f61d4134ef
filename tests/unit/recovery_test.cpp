#include <catch2/catch.hpp>

#include <lmdb.h>

#include <filesystem>
#include <thread>

#include "lighthouse/lighthouse.h"
#include "lmdb/lmdb.h"
#include "store/schema.h"
#include "support/events.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using lighthouse::testing::error_code_of;
using lighthouse::testing::event;
using lighthouse::testing::TempDir;

namespace {

// Writes `value` under `key` in the store's meta database, behind Lighthouse's back.
void poke_meta(const std::filesystem::path& store, std::string_view key, std::string_view value) {
  lmdb::Env env;
  lmdb::check(mdb_env_set_maxdbs(env.get(), 8), "maxdbs");
  lmdb::check(mdb_env_open(env.get(), store.c_str(), 0, 0600), "open");
  lmdb::Txn txn(env.get(), false);
  MDB_dbi meta;
  lmdb::check(mdb_dbi_open(txn.get(), schema::kMeta, 0, &meta), "dbi");
  lmdb::put(txn.get(), meta, key, value);
  txn.commit();
}

}  // namespace

TEST_CASE("reopen restores every counter", "[recovery]") {
  TempDir dir;
  StoreStats before;
  std::uint32_t node_id = 0;
  {
    Store store = Store::open(dir / "store");
    for (int i = 0; i < 50; ++i) store.append(event("T", "agg-" + std::to_string(i % 7)));
    before = store.stats();
    node_id = before.node_id;
  }
  Store store = Store::open(dir / "store");
  auto after = store.stats();
  CHECK(after.event_count == before.event_count);
  CHECK(after.last_sequence == 50);
  CHECK(after.last_timestamp_ns == before.last_timestamp_ns);
  CHECK(after.aggregate_count == 7);
  CHECK(after.node_id == node_id);
  CHECK(after.format_version == kFormatVersion);
  auto next = store.append(event("T", "agg-0"));
  CHECK(next.events[0].id.sequence == 51);
  CHECK(next.events[0].aggregate_version == 9);  // agg-0 held 0,7,...,49: 8 events
  CHECK(next.events[0].id.node_id == node_id);
}

TEST_CASE("the node id is chosen at creation and can be overridden per open", "[recovery]") {
  TempDir dir;
  Options options;
  options.node_id = 77;
  { Store::open(dir / "store", options).append(event("T")); }
  CHECK(Store::open(dir / "store").stats().node_id == 77);
  Options other;
  other.node_id = 5;
  Store store = Store::open(dir / "other", {});
  store.close();
  Store five = Store::open(dir / "store", other);
  CHECK(five.append(event("T")).events[0].id.node_id == 5);
}

TEST_CASE("a read-only open refuses writes and never creates a store", "[recovery][read_only]") {
  TempDir dir;
  Options ro;
  ro.read_only = true;
  CHECK(error_code_of([&] { Store::open(dir / "missing", ro); }) == ErrorCode::not_found);
  CHECK_FALSE(std::filesystem::exists(dir / "missing"));
  Options no_create;
  no_create.create_if_missing = false;
  CHECK(error_code_of([&] { Store::open(dir / "missing", no_create); }) == ErrorCode::not_found);
  CHECK_FALSE(std::filesystem::exists(dir / "missing"));

  EventId id;
  { id = Store::open(dir / "store").append(event("T")).events[0].id; }
  Store store = Store::open(dir / "store", ro);
  CHECK(store.get(id).type == "T");
  CHECK(store.stats().read_only);
  CHECK(error_code_of([&] { store.append(event("T")); }) == ErrorCode::read_only);
  CHECK(error_code_of([&] { store.append_batch({event("T")}); }) == ErrorCode::read_only);
  // Open read-only, a second open for writing in the same process is refused.
  CHECK(error_code_of([&] { Store::open(dir / "store"); }) == ErrorCode::already_open);
}

TEST_CASE("opening a store twice in a process shares it", "[recovery][registry]") {
  TempDir dir;
  Store a = Store::open(dir / "store");
  Store b = Store::open(dir / "store/../store");  // another spelling of the same path
  a.append(event("T"));
  CHECK(b.stats().event_count == 1);
  auto id = b.append(event("T")).events[0].id;
  CHECK(a.get(id).id == id);
  // A read-only handle on a store open for writing shares it but cannot write.
  Options ro;
  ro.read_only = true;
  Store c = Store::open(dir / "store", ro);
  CHECK(c.get(id).id == id);
  CHECK(error_code_of([&] { c.append(event("T")); }) == ErrorCode::read_only);
  CHECK(a.stats().event_count == 2);
  // Close is for every handle.
  a.close();
  CHECK(error_code_of([&] { b.stats(); }) == ErrorCode::closed);
  // And the path can be opened afresh.
  Store d = Store::open(dir / "store");
  CHECK(d.stats().event_count == 2);
}

TEST_CASE("concurrent opens and closes of one path in a process are safe", "[recovery][registry]") {
  TempDir dir;
  { Store::open(dir / "store", testing::quiet_options()).append(event("T")); }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        Store s = Store::open(dir / "store", testing::quiet_options());
        s.append(event("T"));
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(Store::open(dir / "store", testing::quiet_options()).stats().event_count == 201);
}

TEST_CASE("a store written by a newer format version is refused", "[recovery]") {
  TempDir dir;
  { Store::open(dir / "store").append(event("T")); }
  poke_meta(dir / "store", schema::meta::kFormatVersion, schema::be32(kFormatVersion + 1));
  CHECK(error_code_of([&] { Store::open(dir / "store"); }) == ErrorCode::unsupported_format);
}

TEST_CASE("broken meta invariants are reported on open", "[recovery]") {
  TempDir dir;
  { Store::open(dir / "store").append_batch({event("T"), event("T"), event("T")}); }
  SECTION("last sequence ahead of the data") {
    poke_meta(dir / "store", schema::meta::kLastSequence, schema::be64(9));
  }
  SECTION("last chain altered") {
    poke_meta(dir / "store", schema::meta::kLastChain, std::string(32, 'x'));
  }
  SECTION("a counter of the wrong width") {
    poke_meta(dir / "store", schema::meta::kLastTimestamp, "abc");
  }
  CHECK(error_code_of([&] { Store::open(dir / "store"); }) == ErrorCode::corruption);
}

TEST_CASE("a directory that is not a store is refused", "[recovery]") {
  TempDir dir;
  std::filesystem::create_directories(dir / "junk");
  {
    std::FILE* f = std::fopen((dir / "junk" / "data.mdb").c_str(), "wb");
    for (int i = 0; i < 4096 * 4; ++i) std::fputc(i * 7 % 251, f);
    std::fclose(f);
  }
  CHECK(error_code_of([&] { Store::open(dir / "junk"); }) == ErrorCode::corruption);
  std::filesystem::create_directories(dir / "file-parent");
  { std::FILE* f = std::fopen((dir / "file-parent" / "plain").c_str(), "wb"); std::fclose(f); }
  CHECK(error_code_of([&] { Store::open(dir / "file-parent" / "plain"); }) ==
        ErrorCode::invalid_argument);
}

TEST_CASE("stats count distinct types", "[recovery]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append_batch({event("A"), event("B"), event("A"), event("C", "x")});
  CHECK(store.stats().type_count == 3);
}

TEST_CASE("an LMDB environment that is not a store is refused and left untouched", "[recovery]") {
  TempDir dir;
  const auto path = dir / "foreign";
  std::filesystem::create_directory(path);
  {
    lmdb::Env env;
    lmdb::check(mdb_env_open(env.get(), path.c_str(), 0, 0600), "open");
    lmdb::Txn txn(env.get(), false);
    MDB_dbi main_db;
    lmdb::check(mdb_dbi_open(txn.get(), nullptr, 0, &main_db), "dbi");
    lmdb::put(txn.get(), main_db, "someone-else's-key", "value");
    txn.commit();
  }
  const auto size = std::filesystem::file_size(path / "data.mdb");
  CHECK(error_code_of([&] { Store::open(path); }) == ErrorCode::corruption);
  Options ro;
  ro.read_only = true;
  CHECK(error_code_of([&] { Store::open(path, ro); }) != ErrorCode::internal);
  // Still only the foreign key: no Lighthouse database was added.
  lmdb::Env env;
  lmdb::check(mdb_env_open(env.get(), path.c_str(), MDB_RDONLY, 0600), "open");
  lmdb::Txn txn(env.get(), true);
  MDB_dbi main_db;
  lmdb::check(mdb_dbi_open(txn.get(), nullptr, 0, &main_db), "dbi");
  CHECK(lmdb::entries(txn.get(), main_db) == 1);
  CHECK(std::filesystem::file_size(path / "data.mdb") == size);
}

TEST_CASE("a store whose events lost their format version is refused, not re-created", "[recovery]") {
  TempDir dir;
  { Store::open(dir / "store").append(event("E")); }
  {
    lmdb::Env env;
    lmdb::check(mdb_env_set_maxdbs(env.get(), 8), "maxdbs");
    lmdb::check(mdb_env_open(env.get(), (dir / "store").c_str(), 0, 0600), "open");
    lmdb::Txn txn(env.get(), false);
    MDB_dbi meta;
    lmdb::check(mdb_dbi_open(txn.get(), schema::kMeta, 0, &meta), "dbi");
    MDB_val k = lmdb::val(schema::meta::kFormatVersion);
    lmdb::check(mdb_del(txn.get(), meta, &k, nullptr), "del");
    txn.commit();
  }
  CHECK(error_code_of([&] { Store::open(dir / "store"); }) == ErrorCode::corruption);
}
