#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <thread>

#include "archive/manifest.h"
#include "lighthouse/lighthouse.h"
#include "support/events.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using namespace lighthouse::testing;
namespace fs = std::filesystem;

namespace {

struct Retained {
  TempDir tmp;
  fs::path path = tmp / "store";
  fs::path archive = tmp / "archive";
  std::vector<EventId> ids;
  std::vector<RecordedEvent> before;  // the whole history before truncation

  explicit Retained(int n = 400) {
    Store store = Store::open(path, quiet_options());
    for (int i = 0; i < n; ++i) {
      // "early-k" aggregates only get events in the first half; "long-k" throughout.
      std::string aggregate = i < n / 2 && i % 2 ? "early-" + std::to_string(i % 5) : "long-" + std::to_string(i % 3);
      EventData e = event(i % 2 ? "Odd" : "Even", aggregate, "event " + std::to_string(i));
      if (i % 10 == 0) e.idempotency_key = "key-" + std::to_string(i);
      ids.push_back(store.append(std::move(e)).events[0].id);
    }
    for (const auto& e : store.query({})) before.push_back(e);
  }
  void export_all() {
    Store store = Store::open(path, quiet_options());
    ExportOptions options;
    options.segment_bytes = 4096;
    export_archive(store, archive, options);
  }
};

}  // namespace

TEST_CASE("truncation is refused without an archive that covers the range", "[retention]") {
  Retained r;
  Store store = Store::open(r.path, quiet_options());
  SECTION("no archive") {
    CHECK(error_code_of([&] { store.truncate_before(r.ids[100], r.archive); }) == ErrorCode::not_found);
    // Even when there is nothing before the cut.
    CHECK(error_code_of([&] { store.truncate_before(r.ids[0], r.archive); }) == ErrorCode::not_found);
    CHECK(error_code_of([&] { store.truncate_before(EventId{1, 1, 1}, r.archive); }) == ErrorCode::not_found);
  }
  SECTION("past the export checkpoint") {
    // Export, then append more: cutting past the checkpoint is refused.
    ExportOptions options;
    options.segment_bytes = 4096;
    export_archive(store, r.archive, options);
    store.append(event("Later"));
    store.append(event("Later"));
    auto last = store.append(event("Later")).events[0].id;
    auto before = store.stats();
    CHECK(error_code_of([&] { store.truncate_before(last, r.archive); }) == ErrorCode::invalid_argument);
    CHECK(store.stats().event_count == before.event_count);
  }
  SECTION("a tampered archive") {
    r.export_all();
    auto m = archive::load_manifest(r.archive);
    auto file = r.archive / m.segments[1].file;
    std::string bytes;
    {
      std::ifstream in(file, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    bytes[bytes.size() / 2] ^= 1;
    std::ofstream(file, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    CHECK(error_code_of([&] { store.truncate_before(r.ids[300], r.archive); }) == ErrorCode::corruption);
    CHECK(store.stats().event_count == 400);
  }
  SECTION("another store's archive") {
    Retained other(400);
    other.export_all();
    CHECK(error_code_of([&] { store.truncate_before(r.ids[100], other.archive); }) ==
          ErrorCode::invalid_argument);
    CHECK(store.stats().event_count == 400);
  }
}

TEST_CASE("after truncation the store keeps its promises", "[retention]") {
  Retained r;
  r.export_all();
  Store store = Store::open(r.path, quiet_options());
  auto report = store.truncate_before(r.ids[250], r.archive);
  CHECK(report.events_dropped == 250);
  CHECK(report.base_sequence == 251);
  auto stats = store.stats();
  CHECK(stats.event_count == 150);
  CHECK(stats.base_sequence == 251);
  CHECK(stats.base_archive == fs::absolute(r.archive).string());
  CHECK(error_code_of([&] { store.get(r.ids[10]); }) == ErrorCode::not_found);
  CHECK(store.get(r.ids[250]).id == r.ids[250]);
  auto verified = store.verify();
  INFO((verified.problems.empty() ? "" : verified.problems.front().category + " " + verified.problems.front().detail));
  CHECK(verified.ok());

  // Sequences, timestamps and versions continue.
  auto next = store.append(event("Next", "early-1"), ExpectedVersion::exact(20)).events[0];
  CHECK(next.id.sequence == 401);
  CHECK(next.id.timestamp_ns > r.ids.back().timestamp_ns);
  CHECK(next.aggregate_version == 21);  // early-1 lost all its events; its head was kept
  std::uint64_t long0 = 0;
  for (const auto& e : r.before) long0 += e.aggregate == "long-0";
  auto more = store.append(event("Next", "long-0"), ExpectedVersion::stream_exists()).events[0];
  CHECK(more.aggregate_version == long0 + 1);  // long-0 lost only its early events
  CHECK(error_code_of([&] { store.append(event("Next", "early-3"), ExpectedVersion::no_stream()); }) ==
        ErrorCode::wrong_expected_version);

  // An idempotency key of a dropped event still replays.
  EventData retry = event("Even", "long-0", "event 0");
  retry.idempotency_key = "key-0";
  auto replay = store.append(retry);
  CHECK(replay.replayed);
  CHECK(replay.events[0].id == r.ids[0]);
  CHECK(replay.events[0].aggregate_version == 1);

  // Queries that reach below the base say so; those above it do not.
  auto all = store.query({});
  REQUIRE(all.truncation().has_value());
  CHECK(all.truncation()->base_sequence == 251);
  CHECK(all.truncation()->archive == fs::absolute(r.archive).string());
  Query above;
  above.from_sequence = 300;
  CHECK_FALSE(store.query(above).truncation().has_value());
  CHECK(store.read_aggregate("long-0").truncation().has_value());
  CHECK(store.read_aggregate("early-1").truncation().has_value());
  CHECK_FALSE(store.read_aggregate("long-0", 90).truncation().has_value());
  std::vector<std::uint64_t> versions;
  for (const auto& e : store.read_aggregate("long-0", 90, 92)) versions.push_back(e.aggregate_version);
  CHECK(versions == std::vector<std::uint64_t>{90, 91, 92});

  // verify and repair keep working from the anchor.
  CHECK(store.verify().ok());
  CHECK(store.repair().after.ok());
  CHECK(store.append(retry).replayed);
}

TEST_CASE("truncation under concurrent appends loses nothing appended", "[retention]") {
  // 45,000 events: truncation drops the first 40,000 in bounded transactions
  // (10,000 events each), and appends commit between them.
  TempDir tmp;
  const fs::path path = tmp / "store", archive = tmp / "archive";
  EventId cut;
  {
    Store store = Store::open(path);
    for (int b = 0; b < 45; ++b) {
      auto r = store.append_batch(std::vector<EventData>(1000, event("Bulk", "bulk-" + std::to_string(b % 7))));
      if (b == 40) cut = r.events.front().id;
    }
    ExportOptions options;
    options.segment_bytes = 1 << 20;
    export_archive(store, archive, options);
  }
  Store store = Store::open(path);
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> count{0};
  std::vector<EventId> appended;       // read after the join
  std::vector<std::uint64_t> bases;    // the store's base right after each append returned
  std::thread writer([&] {
    while (!stop) {
      appended.push_back(store.append(event("During", "long-1")).events[0].id);
      bases.push_back(store.stats().base_sequence);
      ++count;
    }
  });
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (count < 5 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(count >= 5);
  auto report = store.truncate_before(cut, archive);
  stop = true;
  writer.join();
  CHECK(report.events_dropped == 40'000);
  CHECK(report.base_sequence == 40'001);
  // Some append was acknowledged between two of the truncation's
  // transactions: it saw a base the truncation passed through.
  CHECK(std::any_of(bases.begin(), bases.end(), [](std::uint64_t b) { return b > 1 && b < 40'001; }));
  CHECK(store.verify().ok());
  for (const auto& id : appended) CHECK(store.get(id).id == id);
  // The store's own `$health.*` events (an SLA warning on a slow machine) aside.
  Query own;
  own.type_prefix = "$health.";
  std::size_t health_events = 0;
  for (const auto& e : store.query(own)) health_events += e.type.size() > 0;
  CHECK(store.stats().event_count == 5'000 + appended.size() + health_events);
}

TEST_CASE("compact shrinks the file and the result verifies", "[retention]") {
  Retained r(3000);
  r.export_all();
  {
    Store store = Store::open(r.path, quiet_options());
    store.truncate_before(r.ids[2900], r.archive);
    // Open in this process: refused.
    CHECK(error_code_of([&] { Store::compact(r.path); }) == ErrorCode::already_open);
  }
  auto report = Store::compact(r.path);
  CHECK(report.bytes_after < report.bytes_before);
  Store store = Store::open(r.path, quiet_options());
  CHECK(store.verify().ok());
  CHECK(store.stats().event_count == 100);
  CHECK(store.append(event("After")).events[0].id.sequence == 3001);
}

TEST_CASE("exporting the rest and importing the whole archive rebuilds the history", "[retention]") {
  Retained r;
  r.export_all();
  std::vector<RecordedEvent> later;
  {
    Store store = Store::open(r.path, quiet_options());
    store.truncate_before(r.ids[300], r.archive);
    for (int i = 0; i < 50; ++i) store.append(event("Later", "long-2", "later " + std::to_string(i)));
    export_archive(store, r.archive);  // continues from the checkpoint
    for (const auto& e : store.query({})) later.push_back(e);
  }
  CHECK(verify_archive(r.archive).ok());
  Store copy = Store::open(r.tmp / "copy", quiet_options());
  CHECK(import_archive(r.archive, copy).events == 450);
  CHECK(copy.verify().ok());
  std::vector<RecordedEvent> all;
  for (const auto& e : copy.query({})) all.push_back(e);
  REQUIRE(all.size() == 450);
  for (std::size_t i = 0; i < 400; ++i) {
    CHECK(all[i].id == r.before[i].id);
    CHECK(all[i].chain == r.before[i].chain);
  }
  for (std::size_t i = 0; i < later.size(); ++i) CHECK(all[300 + i].chain == later[i].chain);
}
