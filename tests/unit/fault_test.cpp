#include <catch2/catch.hpp>

#include <set>
#include <sstream>

#include "lighthouse/lighthouse.h"
#include "support/events.h"
#include "support/process.h"
#include "support/scan.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using namespace lighthouse::testing;

namespace {

struct WorkerOutput {
  std::set<std::string> acked;
  std::vector<std::string> errors;  // "CODE message"
  std::string health;               // "STATE reason", as the worker saw it at the end
};

WorkerOutput parse(const std::string& out) {
  WorkerOutput w;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("ack ", 0) == 0) {
      w.acked.insert(line.substr(4, line.find(' ', 4) - 4));
    } else if (line.rfind("error ", 0) == 0) {
      w.errors.push_back(line.substr(6));
    } else if (line.rfind("health ", 0) == 0) {
      w.health = line.substr(7);
    }
  }
  return w;
}

// Runs the append worker with the fault shim failing `call` after `after`
// calls, then checks: every acknowledged event is stored, nothing else is,
// the failed appends got a clear error, and the store reopens and verifies.
void fault_during_appends(const std::string& call, int after, int error_number) {
  TempDir dir;
  { Store::open(dir / "store"); }
  auto result = run({helper_path("APPEND_WORKER"), (dir / "store").string(), "400", "--threads", "4",
                     "--batch", "3", "--keep-going"},
                    {"LD_PRELOAD=" + helper_path("FAULT_SHIM"), "LH_FAULT_CALL=" + call,
                     "LH_FAULT_AFTER=" + std::to_string(after),
                     "LH_FAULT_ERRNO=" + std::to_string(error_number),
                     "LH_FAULT_PATH=data.mdb", "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1:abort_on_error=1"});
  INFO(call << " after " << after << ": " << result.out.substr(0, 3000));
  auto w = parse(result.out);
  CHECK(result.signal == 0);
  CHECK(result.exit_code == 1);
  REQUIRE_FALSE(w.errors.empty());
  // The group that met the fault fails with store_failed; later appends are
  // refused with the same code until the store is reopened.
  for (const auto& e : w.errors) CHECK(e.rfind("store_failed ", 0) == 0);
  // The health state records the fault: emergency, with the failure named.
  CHECK(w.health.rfind("emergency the store failed: ", 0) == 0);
  auto scanned = scan(dir / "store");
  CHECK(check_history(scanned) == "");
  // The store's own `$health.*` events are not the worker's.
  std::set<std::string> stored;
  std::uint64_t own = 0;
  for (const auto& e : scanned.events) {
    if (e.type.rfind("$health.", 0) == 0) ++own;
    else stored.insert(e.id.to_string());
  }
  CHECK(stored == w.acked);
  // Reopened, the store takes appends again: a recorded failure emergency
  // ends when the failed process is gone.
  Store store = Store::open(dir / "store");
  CHECK(store.health().state == HealthState::healthy);
  CHECK(store.append(event("AfterFault")).events[0].id.sequence ==
        w.acked.size() + own + (own != 0 ? 2 : 1));
}

}  // namespace

TEST_CASE("fdatasync failing with EIO fails the group and keeps every acknowledged event",
          "[fault]") {
  fault_during_appends("fdatasync", 10, EIO);
}

TEST_CASE("page writes failing with ENOSPC fail the group and keep acknowledged events",
          "[fault]") {
  fault_during_appends("pwrite,writev,pwritev", 25, ENOSPC);
}

TEST_CASE("a failed store refuses appends with store_failed until reopened", "[fault]") {
  TempDir dir;
  { Store::open(dir / "store"); }
  auto result = run({helper_path("APPEND_WORKER"), (dir / "store").string(), "50", "--keep-going"},
                    {"LD_PRELOAD=" + helper_path("FAULT_SHIM"), "LH_FAULT_CALL=fdatasync",
                     "LH_FAULT_AFTER=5", "LH_FAULT_TIMES=1", "LH_FAULT_PATH=data.mdb",
                     "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1:abort_on_error=1"});
  auto w = parse(result.out);
  // Only one fdatasync failed, yet every later append was refused: the store
  // does not trust itself after an I/O error.
  CHECK(w.acked.size() == 5);
  REQUIRE(w.errors.size() == 45);
  CHECK(w.errors.front().find("reopen") != std::string::npos);
  // The next write succeeded, so the emergency is recorded in the store for
  // every process, as a `$health.emergency` event — and the next open, the
  // failed process being gone, ends it with a `$health.healthy` one.
  CHECK(w.health.rfind("emergency the store failed: ", 0) == 0);
  Store store = Store::open(dir / "store");
  CHECK(store.health().state == HealthState::healthy);
  Query q;
  q.type_prefix = "$health.";
  std::vector<std::string> types;
  auto cursor = store.query(q);
  while (auto e = cursor.next()) types.push_back(e->type);
  CHECK(types == std::vector<std::string>{"$health.emergency", "$health.healthy"});
  CHECK(store.append(event("AfterFault")).events.size() == 1);
}
