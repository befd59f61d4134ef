// Regression tests for problems found in review; each names what it broke.
#include <catch2/catch.hpp>

#include <fstream>

#include "lighthouse/lighthouse.h"
#include "support/damage.h"
#include "support/events.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using namespace lighthouse::testing;
namespace fs = std::filesystem;

TEST_CASE("to_sequence bounds a cursor even when it is past the last event", "[regression][query]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  for (int i = 0; i < 5; ++i) store.append(event("T"));
  Query q;
  q.to_sequence = 10;
  EventCursor cursor = store.query(q);
  for (int i = 0; i < 600; ++i) store.append(event("T"));  // appended before the first next()
  std::uint64_t count = 0;
  while (auto e = cursor.next()) {
    CHECK(e->id.sequence <= 10);
    ++count;
  }
  CHECK(count <= 10);
  q.direction = Direction::reverse;
  CHECK(store.query(q).next()->id.sequence == 10);
}

TEST_CASE("a batch that meets damage in the stored state writes nothing", "[regression][append]") {
  TempDir dir;
  { Store::open(dir / "store").append(event("T", "fine")); }
  damage(dir / "store", [](MDB_txn* t, const Databases& d) { lmdb::put(t, d.aggregate_heads, "bad", "xyz"); });
  Store store = Store::open(dir / "store");
  CHECK(error_code_of([&] { store.append_batch({event("T", "fine"), event("T", "bad")}); }) ==
        ErrorCode::corruption);
  CHECK(store.stats().event_count == 1);
  CHECK(store.append(event("T", "fine")).events[0].aggregate_version == 2);
}

TEST_CASE("import through a read-only handle is refused", "[regression][archive]") {
  TempDir dir;
  Store writer = Store::open(dir / "store");
  writer.append(event("T"));
  Store source = Store::open(dir / "source");
  source.append(event("S"));
  export_archive(source, dir / "archive");
  Options ro;
  ro.read_only = true;
  Store reader = Store::open(dir / "store", ro);
  CHECK(error_code_of([&] { import_archive(dir / "archive", reader); }) == ErrorCode::read_only);
}

TEST_CASE("exporting a truncated store into a new archive makes a valid archive", "[regression][archive]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  std::vector<EventId> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(store.append(event("T", "a")).events[0].id);
  export_archive(store, dir / "first");
  store.truncate_before(ids[60], dir / "first");
  auto report = export_archive(store, dir / "second");
  CHECK(report.events == 40);
  auto verified = verify_archive(dir / "second");
  CHECK(verified.ok());
  CHECK(read_manifest(dir / "second").base_sequence == 61);
  CHECK(cross_check_archive(store, dir / "second").empty());
}

TEST_CASE("repair never lets a new append reuse the sequence of an undecodable last event",
          "[regression][repair]") {
  TempDir dir;
  EventId last;
  {
    Store store = Store::open(dir / "store");
    for (int i = 0; i < 5; ++i) last = store.append(event("T")).events[0].id;
  }
  damage(dir / "store", [&](MDB_txn* t, const Databases& d) { lmdb::put(t, d.events, key_of(last), "\xc1"); });
  Options options;
  options.check_on_open = false;
  Store store = Store::open(dir / "store", options);
  auto repaired = store.repair();
  CHECK(repaired.left_for_operator.size() == 1);
  CHECK(store.append(event("T")).events[0].id.sequence == last.sequence + 1);
}

TEST_CASE("a manifest with a malformed hash is a corruption error, not a crash", "[regression][archive]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append(event("T"));
  export_archive(store, dir / "archive");
  std::string text;
  {
    std::ifstream in(dir / "archive" / "manifest.json");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto at = text.find("\"chain\": \"");
  REQUIRE(at != std::string::npos);
  text.replace(at + 10, 4, "zzzz");
  std::ofstream(dir / "archive" / "manifest.json") << text;
  CHECK(error_code_of([&] { read_manifest(dir / "archive"); }) == ErrorCode::corruption);
  CHECK(error_code_of([&] { verify_archive(dir / "archive"); }) == ErrorCode::corruption);
}

TEST_CASE("moved-from handles and cursors raise closed instead of crashing", "[regression]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append(event("E"));
  Store moved = std::move(store);
  CHECK(error_code_of([&] { store.append(event("E")); }) == ErrorCode::closed);  // NOLINT(bugprone-use-after-move)
  CHECK(error_code_of([&] { store.stats(); }) == ErrorCode::closed);
  CHECK(error_code_of([&] { store.query({}); }) == ErrorCode::closed);
  CHECK(error_code_of([&] { store.health(); }) == ErrorCode::closed);
  CHECK(store.path().empty());
  CHECK_NOTHROW(store.close());
  EventCursor cursor = moved.query({});
  EventCursor taken = std::move(cursor);
  CHECK(error_code_of([&] { cursor.next(); }) == ErrorCode::closed);  // NOLINT(bugprone-use-after-move)
  CHECK(taken.next());
  CHECK(moved.stats().event_count == 1);
}

TEST_CASE("after close a cursor raises closed at once, even with events it had read", "[regression]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  for (int i = 0; i < 10; ++i) store.append(event("E"));
  EventCursor cursor = store.query({});
  REQUIRE(cursor.next());  // the first chunk (all ten) is read
  store.close();
  CHECK(error_code_of([&] { cursor.next(); }) == ErrorCode::closed);
}

TEST_CASE("a clock at the end of the 64-bit range is a clear limit, nothing written", "[regression]") {
  TempDir dir;
  Options options;
  options.clock = [] { return std::numeric_limits<std::uint64_t>::max(); };
  Store store = Store::open(dir / "store", options);
  CHECK(error_code_of([&] { store.append(event("E")); }) == ErrorCode::limit_exceeded);
  CHECK(store.stats().event_count == 0);
  options.clock = [] { return std::numeric_limits<std::uint64_t>::max() - 2; };
  store.close();
  Store again = Store::open(dir / "store", options);
  for (int i = 0; i < 3; ++i) again.append(event("E"));  // max - 2, max - 1, max
  CHECK(error_code_of([&] { again.append(event("E")); }) == ErrorCode::limit_exceeded);
  CHECK(again.stats().event_count == 3);
  CHECK(again.verify().ok());
}
