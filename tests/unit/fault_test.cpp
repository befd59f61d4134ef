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

TEST_CASE("fdatasync failing with ENOSPC and page writes failing with EIO: same guarantees", "[fault]") {
  fault_during_appends("fdatasync", 7, ENOSPC);
  fault_during_appends("writev,pwritev", 12, EIO);
}

TEST_CASE("the meta page write failing (pwrite on the O_DSYNC descriptor) panics the store; reopened it verifies",
          "[fault]") {
  // LMDB writes the meta page through a descriptor of its own, opened with
  // O_DSYNC; when that write fails it marks the environment as failed
  // (MDB_PANIC): no later transaction of the process may begin, so the
  // emergency cannot even be recorded in the store. The fault hits that
  // descriptor only, at the first commit and at later ones.
  for (int after : {0, 6, 20}) {
    TempDir dir;
    { Store::open(dir / "store"); }
    std::string command = "'" + helper_path("APPEND_WORKER") + "' '" + (dir / "store").string() +
                          "' 90 --threads 1 --batch 3 --keep-going 2>&1";
    auto result = run({"/bin/sh", "-c", command},
                      {"LD_PRELOAD=" + helper_path("FAULT_SHIM"), "LH_FAULT_CALL=pwrite,pwritev,writev",
                       "LH_FAULT_DSYNC=1", "LH_FAULT_AFTER=" + std::to_string(after), "LH_FAULT_PATH=data.mdb",
                       "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1:abort_on_error=1"});
    INFO("after " << after << ": " << result.out.substr(0, 3000));
    auto w = parse(result.out);
    CHECK(result.exit_code == 1);
    REQUIRE_FALSE(w.errors.empty());
    for (const auto& e : w.errors) CHECK(e.rfind("store_failed ", 0) == 0);
    // The panic: the next write transaction could not begin.
    CHECK(result.out.find("MDB_PANIC") != std::string::npos);
    CHECK(w.health.rfind("emergency the store failed: ", 0) == 0);
    // Exactly the acknowledged events are stored (the failed group's meta
    // page never made it visible), and the emergency is not among them.
    auto scanned = scan(dir / "store");
    CHECK(check_history(scanned) == "");
    std::set<std::string> stored;
    for (const auto& e : scanned.events) {
      CHECK(e.type.rfind("$health.", 0) != 0);
      stored.insert(e.id.to_string());
    }
    CHECK(stored == w.acked);
    CHECK(w.acked.size() == static_cast<std::size_t>(after) * 3);  // one thread: a group is one batch, a meta write each
    Store store = Store::open(dir / "store");
    CHECK(store.verify().ok());
    CHECK(store.health().state == HealthState::healthy);
    CHECK(store.append(event("AfterFault")).events.size() == 1);
  }
}

namespace {

struct ToolRun {
  int exit_code;
  std::string out;
};

ToolRun tool_with_fault(const std::vector<std::string>& args, const std::string& call, const std::string& path,
                        int error_number = EIO, int after = 0) {
  std::vector<std::string> argv{helper_path("LIGHTHOUSE_TOOL")};
  argv.insert(argv.end(), args.begin(), args.end());
  // stderr of the child goes to ours; the tool's message is checked through
  // a shell redirect instead.
  std::string command;
  for (const auto& a : argv) command += "'" + a + "' ";
  auto result = run({"/bin/sh", "-c", command + "2>&1"},
                    {"LD_PRELOAD=" + helper_path("FAULT_SHIM"), "LH_FAULT_CALL=" + call,
                     "LH_FAULT_AFTER=" + std::to_string(after), "LH_FAULT_ERRNO=" + std::to_string(error_number),
                     "LH_FAULT_PATH=" + path, "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0"});
  return {result.exit_code, result.out};
}

}  // namespace

TEST_CASE("open and mmap failing at open time: a clear error, the store untouched", "[fault]") {
  TempDir dir;
  {
    Store store = Store::open(dir / "store");
    store.append(event("Kept"));
  }
  const auto size = std::filesystem::file_size(dir / "store" / "data.mdb");
  for (const std::string call : {"open", "mmap"}) {
    auto r = tool_with_fault({"stats", (dir / "store").string()}, call, "data.mdb");
    INFO(call << ": " << r.out);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("lighthouse: cannot open store") != std::string::npos);
    CHECK(r.out.find("Input/output error") != std::string::npos);
  }
  auto r = tool_with_fault({"append", (dir / "store").string()}, "open", "data.mdb", EACCES);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("Permission denied") != std::string::npos);
  CHECK(std::filesystem::file_size(dir / "store" / "data.mdb") == size);
  Store store = Store::open(dir / "store");
  CHECK(store.stats().event_count == 1);
  CHECK(store.verify().ok());
}

TEST_CASE("fsync failing during a backup and write failing during an export: clear errors, nothing claimed",
          "[fault]") {
  for (const auto& [error_number, message] :
       {std::pair{EIO, "Input/output error"}, std::pair{ENOSPC, "no space left on device"}}) {
    TempDir dir;
    {
      Store store = Store::open(dir / "store");
      for (int i = 0; i < 200; ++i) store.append(event("E", "a", std::string(100, 'x')));
    }
    INFO(message);
    // Nothing claimed: a destination the backup created is gone, an empty
    // one it was given is left empty.
    std::filesystem::create_directory(dir / "given");
    for (const std::string destination : {"copy", "given"}) {
      auto backup = tool_with_fault({"backup", (dir / "store").string(), (dir / destination).string()}, "fsync",
                                    destination, error_number);
      INFO(destination << ": " << backup.out);
      CHECK(backup.exit_code == 1);
      CHECK(backup.out.find(message) != std::string::npos);
    }
    CHECK_FALSE(std::filesystem::exists(dir / "copy"));
    REQUIRE(std::filesystem::is_directory(dir / "given"));
    CHECK(std::filesystem::is_empty(dir / "given"));

    // The archive's first export fails while writing its segment.
    auto failed = tool_with_fault({"export", (dir / "store").string(), (dir / "archive").string()}, "write",
                                  "archive", error_number);
    INFO(failed.out);
    CHECK(failed.exit_code == 1);
    CHECK(failed.out.find(message) != std::string::npos);
    // Nothing was claimed: no manifest names a segment that is not whole; a
    // retry without the fault exports everything and verifies.
    auto retry =
        run({helper_path("LIGHTHOUSE_TOOL"), "export", (dir / "store").string(), (dir / "archive").string()});
    CHECK(retry.exit_code == 0);
    auto verified = run({helper_path("LIGHTHOUSE_TOOL"), "archive", "verify", (dir / "archive").string()});
    CHECK(verified.exit_code == 0);
    CHECK(verified.out.find("200 events") != std::string::npos);
    // The store was never touched by either.
    Store store = Store::open(dir / "store");
    CHECK(store.verify().ok());
  }
}
