#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <filesystem>
#include <thread>

#include "lighthouse/lighthouse.h"
#include "support/damage.h"
#include "support/events.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using namespace lighthouse::testing;

namespace {

struct Fixture {
  TempDir dir;
  std::filesystem::path path = dir / "store";
  std::vector<EventId> ids;
  Fixture() {
    Options options;
    options.compression_threshold = 0;
    Store store = Store::open(path, options);
    for (int i = 0; i < 60; ++i) {
      EventData e = event(i % 2 ? "Odd" : "Even", "agg-" + std::to_string(i % 4),
                          "payload-" + std::to_string(i) + "-MARK" + std::to_string(1000 + i));
      if (i % 5 == 0) e.idempotency_key = "key-" + std::to_string(i);
      ids.push_back(store.append(e).events[0].id);
    }
  }
  Store open(bool check_on_open = true) const {
    Options options;
    options.compression_threshold = 0;
    options.check_on_open = check_on_open;
    return Store::open(path, options);
  }
};

bool names(const VerifyReport& report, const std::string& category, const std::string& subject_part) {
  for (const auto& p : report.problems) {
    if (p.category == category && p.subject.find(subject_part) != std::string::npos) return true;
  }
  return false;
}

std::string describe(const VerifyReport& report) {
  std::string out;
  for (const auto& p : report.problems) out += p.category + " | " + p.subject + " | " + p.detail + "\n";
  return out;
}

}  // namespace

TEST_CASE("a clean store verifies", "[integrity]") {
  Fixture f;
  Store store = f.open();
  auto report = store.verify();
  INFO(describe(report));
  CHECK(report.ok());
  CHECK(report.events_checked == 60);
  CHECK(report.index_entries_checked == 60 + 60 + 12);
}

TEST_CASE("flipped bytes in stored events: reads fail for exactly those, verify names them",
          "[integrity][corruption]") {
  Fixture f;
  REQUIRE(flip_marker(f.path / "data.mdb", "MARK1007") >= 1);
  REQUIRE(flip_marker(f.path / "data.mdb", "MARK1031") >= 1);
  Store store = f.open();
  for (std::size_t i = 0; i < f.ids.size(); ++i) {
    bool damaged = i == 7 || i == 31;
    if (damaged) {
      CHECK(error_code_of([&] { store.get(f.ids[i]); }) == ErrorCode::corruption);
    } else {
      CHECK(store.get(f.ids[i]).id == f.ids[i]);
    }
  }
  auto report = store.verify();
  INFO(describe(report));
  CHECK(report.problem_count == 2);
  CHECK(names(report, "checksum", f.ids[7].to_string()));
  CHECK(names(report, "checksum", f.ids[31].to_string()));
  // repair leaves them for the operator, and changes nothing else.
  auto repaired = store.repair();
  CHECK(repaired.left_for_operator.size() == 2);
  CHECK(repaired.after.problem_count == 2);
  CHECK(store.stats().event_count == 60);
}

TEST_CASE("verify names damaged indexes and counters, and repair fixes them", "[integrity][repair]") {
  Fixture f;
  std::string expect_category, expect_subject;
  SECTION("a by_type entry deleted") {
    damage(f.path, [&](MDB_txn* t, const Databases& d) { del(t, d.by_type, "Odd", key_of(f.ids[9])); });
    expect_category = "by_type";
    expect_subject = f.ids[9].to_string();
  }
  SECTION("a by_type entry pointing at the wrong event") {
    damage(f.path, [&](MDB_txn* t, const Databases& d) {
      del(t, d.by_type, "Odd", key_of(f.ids[9]));
      lmdb::put(t, d.by_type, "Odd", key_of(f.ids[10]));  // an Even event
    });
    expect_category = "by_type";
    expect_subject = f.ids[10].to_string();
  }
  SECTION("a by_aggregate entry pointing at the wrong event") {
    damage(f.path, [&](MDB_txn* t, const Databases& d) {
      // agg-1 holds events 1, 5, 9, ... as versions 1, 2, 3, ...
      del(t, d.by_aggregate, "agg-1", schema::be64(3) + key_of(f.ids[9]));
      lmdb::put(t, d.by_aggregate, "agg-1", schema::be64(3) + key_of(f.ids[13]));
    });
    expect_category = "by_aggregate";
    expect_subject = f.ids[13].to_string();
  }
  SECTION("an event deleted") {
    damage(f.path, [&](MDB_txn* t, const Databases& d) { del(t, d.events, key_of(f.ids[20])); });
    expect_category = "by_type";
    expect_subject = f.ids[20].to_string();
  }
  SECTION("a counter altered") {
    damage(f.path, [&](MDB_txn* t, const Databases& d) {
      lmdb::put(t, d.meta, schema::meta::kAggregateCount, schema::be64(99));
    });
    expect_category = "meta";
    expect_subject = "aggregate_count";
  }
  SECTION("an aggregate head altered") {
    // The head of agg-2 is its last by_aggregate entry; move it ahead.
    damage(f.path, [&](MDB_txn* t, const Databases& d) {
      del(t, d.by_aggregate, "agg-2", schema::be64(15) + key_of(f.ids[58]));
      lmdb::put(t, d.by_aggregate, "agg-2", schema::be64(16) + key_of(f.ids[58]));
    });
    expect_category = "by_aggregate";
    expect_subject = "agg-2";
  }
  SECTION("an idempotency entry deleted") {
    damage(f.path, [&](MDB_txn* t, const Databases& d) { del(t, d.by_idempotency_key, "key-25"); });
    expect_category = "idempotency";
    expect_subject = f.ids[25].to_string();
  }
  const bool gap = expect_subject == f.ids[20].to_string();
  if (gap) {
    // The O(1) checks on open see the gap; verify and repair need them off.
    CHECK(error_code_of([&] { f.open(); }) == ErrorCode::corruption);
  }
  Store store = f.open(!gap);
  auto report = store.verify();
  INFO(describe(report));
  CHECK_FALSE(report.ok());
  CHECK(names(report, expect_category, expect_subject));
  auto repaired = store.repair();
  INFO("after repair:\n" << describe(repaired.after));
  if (gap) {
    // A deleted event cannot be restored: its sequence gap remains, but the
    // indexes no longer name it.
    CHECK(repaired.after.problem_count >= 1);
    for (const auto& p : repaired.after.problems) {
      CHECK((p.category == "sequence" || p.category == "chain" || p.category == "aggregate_version"));
    }
  } else {
    CHECK(repaired.after.ok());
  }
  CHECK(repaired.before.problem_count == report.problem_count);
  // Appends after a repair continue the history correctly.
  auto next = store.append(event("Odd", "agg-1"));
  CHECK(next.events[0].aggregate_version == 16);
}

TEST_CASE("a truncated, empty or foreign data file is a clear error, not a crash", "[integrity][open]") {
  Fixture f;
  const auto data = f.path / "data.mdb";
  const auto size = std::filesystem::file_size(data);
  SECTION("truncated to half") {
    std::filesystem::resize_file(data, size / 2);
    CHECK(error_code_of([&] { f.open(); }) == ErrorCode::corruption);
  }
  SECTION("truncated to two pages") {
    std::filesystem::resize_file(data, 8192);
    CHECK(error_code_of([&] { f.open(); }) == ErrorCode::corruption);
  }
  SECTION("zero length") {
    std::filesystem::resize_file(data, 0);
    CHECK(error_code_of([&] { f.open(); }) == ErrorCode::corruption);
    CHECK(std::filesystem::file_size(data) == 0);  // not replaced by an empty store
  }
  SECTION("a lock file that cannot be opened") {
    std::filesystem::remove(f.path / "lock.mdb");
    std::filesystem::create_directory(f.path / "lock.mdb");
    CHECK(error_code_of([&] { f.open(); }) == ErrorCode::io_error);
  }
}

TEST_CASE("verify runs on a live store and a read-only process never writes", "[integrity]") {
  Fixture f;
  {
    Store store = f.open();
    // Enough events that one verify takes many commits' time.
    for (int b = 0; b < 30; ++b) store.append_batch(std::vector<EventData>(1000, event("Bulk", "bulk")));
    std::atomic<bool> stop{false};
    std::mutex mutex;
    std::vector<std::chrono::steady_clock::time_point> acks;  // when each append returned
    std::thread writer([&] {
      while (!stop) {
        store.append(event("Live", "agg-live"));
        std::lock_guard lock(mutex);
        acks.push_back(std::chrono::steady_clock::now());
      }
    });
    // Until a verify saw appends acknowledged while it ran (bounded).
    std::size_t most_inside = 0;
    for (int i = 0; i < 20 && most_inside < 3; ++i) {
      const std::uint64_t before = store.stats().last_sequence;
      const auto start = std::chrono::steady_clock::now();
      auto report = store.verify();
      const auto end = std::chrono::steady_clock::now();
      const std::uint64_t after = store.stats().last_sequence;
      CHECK(report.ok());
      // One snapshot, taken between the two counts.
      CHECK(report.events_checked >= before);
      CHECK(report.events_checked <= after);
      std::lock_guard lock(mutex);
      const auto inside = static_cast<std::size_t>(std::count_if(
          acks.begin(), acks.end(), [&](const auto& t) { return t > start && t < end; }));
      most_inside = std::max(most_inside, inside);
    }
    stop = true;
    writer.join();
    // Appends kept committing while verify read its snapshot (a verify that
    // held the writers back would see at most the one already in flight).
    CHECK(most_inside >= 3);
  }
  struct stat before;
  REQUIRE(::stat((f.path / "data.mdb").c_str(), &before) == 0);
  Options ro;
  ro.read_only = true;
  {
    Store store = Store::open(f.path, ro);
    CHECK(store.verify().ok());
    CHECK(error_code_of([&] { store.repair(); }) == ErrorCode::read_only);
  }
  struct stat after;
  REQUIRE(::stat((f.path / "data.mdb").c_str(), &after) == 0);
  CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
  CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
  CHECK(after.st_size == before.st_size);
}

TEST_CASE("a hot backup taken during appends verifies and holds a prefix of them", "[integrity][backup]") {
  Fixture f;
  Store store = f.open();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop) store.append_batch({event("During", "b", std::string(300, 'x')), event("During", "c")});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  BackupReport report = store.backup(f.dir / "backup");
  stop = true;
  writer.join();
  CHECK(report.events >= 60);
  CHECK(report.bytes > 0);
  CHECK(report.events % 2 == 0);  // batches are atomic in the copy too
  Options ro;
  ro.read_only = true;
  Store copy = Store::open(f.dir / "backup", ro);
  CHECK(copy.verify().ok());
  std::vector<EventId> original, copied;
  for (const auto& e : store.query({})) original.push_back(e.id);
  for (const auto& e : copy.query({})) copied.push_back(e.id);
  REQUIRE(copied.size() == report.events);
  CHECK(std::equal(copied.begin(), copied.end(), original.begin()));
  CHECK(error_code_of([&] { store.backup(f.dir / "backup"); }) == ErrorCode::invalid_argument);
  CHECK(error_code_of([&] { store.backup(f.path); }) == ErrorCode::invalid_argument);
  // Nor anywhere inside the store's directory, and nothing is created there.
  CHECK(error_code_of([&] { store.backup(f.path / "inner"); }) == ErrorCode::invalid_argument);
  CHECK(error_code_of([&] { store.backup(f.path / "a" / "b"); }) == ErrorCode::invalid_argument);
  CHECK(error_code_of([&] { store.backup(f.path / ".." / f.path.filename() / "c"); }) ==
        ErrorCode::invalid_argument);
  CHECK_FALSE(std::filesystem::exists(f.path / "inner"));
  CHECK_FALSE(std::filesystem::exists(f.path / "a"));
  CHECK_FALSE(std::filesystem::exists(f.path / "c"));
}
