#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <thread>
#include <sstream>

#include "lighthouse/lighthouse.h"
#include "support/events.h"
#include "support/process.h"
#include "support/scan.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using namespace lighthouse::testing;

namespace {

std::vector<std::string> ack_ids(const std::string& out) {
  std::vector<std::string> ids;
  std::istringstream in(out);
  std::string word, id, rest;
  while (in >> word) {
    if (word == "ack") {
      in >> id;
      ids.push_back(id);
    }
    std::getline(in, rest);
  }
  return ids;
}

void processes_append_at_once(int processes) {
  TempDir dir;
  { Store::open(dir / "store"); }  // created before the workers race
  const std::string worker = helper_path("APPEND_WORKER");
  std::vector<Child> children;
  for (int p = 0; p < processes; ++p) {
    children.push_back(spawn({worker, (dir / "store").string(), "600", "--threads", "2", "--batch",
                              p % 2 == 0 ? "1" : "7", "--prefix", "p" + std::to_string(p),
                              "--expect"}));
  }
  std::set<std::string> acked;
  for (auto& child : children) {
    auto result = wait(child);
    INFO(result.out.substr(0, 2000));
    CHECK(result.exit_code == 0);
    for (auto& id : ack_ids(result.out)) acked.insert(id);
  }
  CHECK(acked.size() == static_cast<std::size_t>(600 * processes));
  auto scanned = scan(dir / "store");
  const auto appended = appended_events(scanned);
  CHECK(appended.size() == acked.size());
  CHECK(check_history(scanned) == "");
  std::set<std::uint32_t> nodes;
  for (const auto& e : appended) {
    CHECK(acked.count(e.id.to_string()) == 1);
    nodes.insert(e.id.node_id);
  }
  CHECK(nodes.size() == 1);  // every process writes with the store's node id
}

}  // namespace

TEST_CASE("two processes append to one store at once", "[multi_process]") {
  processes_append_at_once(2);
}

TEST_CASE("four processes append to one store at once", "[multi_process]") {
  processes_append_at_once(4);
}

TEST_CASE("a map grown by another process is adopted", "[multi_process][map]") {
  TempDir dir;
  Options options = quiet_options();
  options.map_size = 256 * 1024;
  Store store = Store::open(dir / "store", options);
  store.append(event("Mine"));
  auto result = run({helper_path("APPEND_WORKER"), (dir / "store").string(), "2000", "--batch",
                     "50", "--payload", "2000", "--map-size", "262144"});
  REQUIRE(result.exit_code == 0);
  auto ids = ack_ids(result.out);
  REQUIRE(ids.size() == 2000);
  // The child grew the map far beyond ours: reads and writes adopt it.
  CHECK(store.get(EventId::parse(ids.back())).data.size() == 2000);
  CHECK(store.get(EventId::parse(ids.front())).data.size() == 2000);
  auto mine = store.append(event("Mine", "", std::string(5000, 'm')));
  CHECK(mine.events[0].id.sequence == EventId::parse(ids.back()).sequence + 1);
  CHECK(store.stats().map_size_bytes >= 2000u * 2000u);
}

TEST_CASE("four processes on shared aggregates with expected versions and idempotency keys, a fifth verifying",
          "[multi_process]") {
  TempDir dir;
  const auto path = dir / "store";
  { Store::open(path); }
  std::vector<Child> writers;
  for (int p = 0; p < 4; ++p) {
    writers.push_back(spawn({helper_path("APPEND_WORKER"), path.string(), "300", "--threads", "2", "--mixed",
                             "--shared", "--aggregates", "6", "--prefix", "shared", "--expect", "--keys"}));
  }
  // The fifth process verifies, again and again, while they write.
  std::vector<int> verify_codes;
  std::atomic<bool> writing{true};
  std::thread verifier([&] {
    while (writing) verify_codes.push_back(run({helper_path("LIGHTHOUSE_TOOL"), "verify", path.string()}).exit_code);
  });
  std::set<std::string> acked;
  for (auto& child : writers) {
    auto result = wait(child);
    INFO(result.out.substr(0, 2000));
    CHECK(result.exit_code == 0);
    CHECK(result.out.find("replay-mismatch") == std::string::npos);
    for (auto& id : ack_ids(result.out)) CHECK(acked.insert(id).second);
  }
  writing = false;
  verifier.join();
  CHECK_FALSE(verify_codes.empty());
  for (int code : verify_codes) CHECK(code == 0);

  CHECK(acked.size() == 4u * 300u);
  auto scanned = scan(path);
  // Sequences gap-free, versions of every shared aggregate contiguous.
  CHECK(check_history(scanned) == "");
  const auto appended = appended_events(scanned);
  CHECK(appended.size() == acked.size());
  std::set<std::string> keys;
  for (const auto& e : appended) {
    REQUIRE(e.idempotency_key);
    CHECK(keys.insert(*e.idempotency_key).second);  // no key stored twice
    CHECK(acked.count(e.id.to_string()) == 1);
  }
  CHECK(Store::open(path).verify().ok());
}
