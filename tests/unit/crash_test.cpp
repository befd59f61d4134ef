// Crash tests: a child process appends continuously and reports each
// acknowledged event through a pipe; the test kills it with SIGKILL at a
// random moment, reopens the store and checks that every acknowledged event
// is there, that no batch is partly visible, and that verify() passes.
// LIGHTHOUSE_CRASH_CYCLES sets the number of cycles (30 here; the long
// variant, scripts/crash-long.sh, runs 300).
#include <catch2/catch.hpp>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "lighthouse/lighthouse.h"
#include "support/process.h"
#include "support/scan.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using namespace lighthouse::testing;

namespace {

int cycles() {
  const char* n = std::getenv("LIGHTHOUSE_CRASH_CYCLES");
  return n != nullptr && std::atoi(n) > 0 ? std::atoi(n) : 30;
}

std::set<std::string> acked_ids(const std::string& out) {
  std::set<std::string> ids;
  std::istringstream in(out);
  std::string line;
  // A line cut by the kill has no newline: getline still returns it, but an
  // ack is only counted when it is whole (the worker prints it after the
  // append returned, in one write).
  while (std::getline(in, line)) {
    if (in.eof()) break;
    if (line.rfind("ack ", 0) == 0) ids.insert(line.substr(4, line.find(' ', 4) - 4));
  }
  return ids;
}

// Every event the store holds, by ID, and a check that each batch the
// workers wrote is either whole or absent.
std::string check_store(const std::filesystem::path& path, const std::set<std::string>& acked) {
  Store store = Store::open(path);
  const VerifyReport report = store.verify();
  if (!report.ok()) return "verify: " + report.problems.front().detail;
  std::set<std::string> stored;
  std::map<std::string, std::pair<std::size_t, std::size_t>> batches;  // id -> (seen, size)
  Query all;
  auto cursor = store.query(all);
  while (auto e = cursor.next()) {
    stored.insert(e->id.to_string());
    auto batch = e->metadata.find("batch");
    if (batch == e->metadata.end()) continue;
    auto& [seen, size] = batches[batch->second];
    ++seen;
    size = std::stoul(e->metadata.at("size"));
  }
  for (const auto& id : acked) {
    if (stored.count(id) == 0) return "acknowledged event " + id + " is missing";
  }
  for (const auto& [id, counts] : batches) {
    if (counts.first != counts.second) {
      return "batch " + id + " is partly visible: " + std::to_string(counts.first) + " of " +
             std::to_string(counts.second) + " events";
    }
  }
  return "";
}

// One store that every cycle appends to, and what was acknowledged so far.
struct CrashRun {
  TempDir dir;
  std::filesystem::path path = dir / "store";
  std::mt19937 rng{std::random_device{}()};
  std::set<std::string> acked;
  int n = cycles();
  CrashRun() { Store::open(path); }
};

// Reads the child's output until it holds a whole line (an acknowledgement)
// or `limit` passes; returns what it read (wait() reads the rest).
std::string read_first_line(const Child& child, std::chrono::milliseconds limit) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (out.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{child.out_fd, POLLIN, 0};
    if (::poll(&p, 1, 10) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(child.out_fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// Half the cycles kill at a random moment after the child starts (its
// start-up included); the other half once it has acknowledged something,
// so that kills land while appends are being acknowledged on any machine.
std::string wait_to_kill(const Child& child, int cycle, std::mt19937& rng, int min_ms, int max_ms) {
  std::string early;
  if (cycle % 2 == 1) early = read_first_line(child, std::chrono::seconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(min_ms, max_ms)(rng)));
  return early;
}

// Kills an append worker (4 threads, mixed batch sizes, `extra` options)
// with SIGKILL `cycles` times, each at a random moment between `min_ms` and
// `max_ms` after its start; after each kill every event acknowledged so far
// must be stored and no batch partly visible. Returns how many kills landed
// after the worker had acknowledged something.
std::size_t kill_worker_cycles(CrashRun& run, int cycles, const std::string& prefix,
                               const std::vector<std::string>& extra, int min_ms, int max_ms) {
  std::size_t killed_with_acks = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    std::vector<std::string> argv{helper_path("APPEND_WORKER"), run.path.string(), "0", "--threads", "4", "--mixed",
                                  "--aggregates", "20", "--prefix", prefix + std::to_string(cycle), "--keep-going"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Child child = spawn(argv);
    const std::string early = wait_to_kill(child, cycle, run.rng, min_ms, max_ms);
    ::kill(child.pid, SIGKILL);
    ChildResult result = wait(child);
    REQUIRE(result.signal == SIGKILL);
    auto ids = acked_ids(early + result.out);
    if (!ids.empty()) ++killed_with_acks;
    run.acked.insert(ids.begin(), ids.end());
    INFO("cycle " << cycle << ", " << run.acked.size() << " acknowledged so far");
    REQUIRE(check_store(run.path, run.acked) == "");
  }
  return killed_with_acks;
}

}  // namespace

TEST_CASE("SIGKILL at random moments loses no acknowledged event and shows no partial batch",
          "[crash]") {
  CrashRun run;
  // Between the child's start-up and a few hundred group commits.
  const std::size_t killed_with_acks = kill_worker_cycles(run, run.n, "c", {}, 5, 250);
  // The kills landed while appends were being acknowledged, not only
  // before the first one.
  CHECK(killed_with_acks >= static_cast<std::size_t>(run.n) / 2);
  CHECK(check_history(scan(run.path)) == "");
}

TEST_CASE("SIGKILL of the tool's streaming append loses no acknowledged line and keeps line order",
          "[crash]") {
  CrashRun run;
  auto& [dir, path, rng, acked, n] = run;
  std::size_t killed_with_acks = 0;
  for (int cycle = 0; cycle < n; ++cycle) {
    Child child = spawn({helper_path("LIGHTHOUSE_TOOL"), "append", path.string()}, {}, true);
    // A producer writing lines as fast as the tool takes them.
    const int in_fd = child.in_fd;
    child.in_fd = -1;
    std::thread producer([in_fd, cycle] {
      for (int line = 0;; ++line) {
        const std::string text = "{\"type\":\"Line\",\"aggregate\":\"cycle-" + std::to_string(cycle) +
                                 "\",\"content_type\":\"json\",\"data\":{\"cycle\":" + std::to_string(cycle) +
                                 ",\"line\":" + std::to_string(line) + "}}\n";
        if (::write(in_fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) break;  // killed
      }
      ::close(in_fd);
    });
    const std::string early = wait_to_kill(child, cycle, rng, 20, 250);
    ::kill(child.pid, SIGKILL);
    ChildResult result = wait(child);
    producer.join();
    REQUIRE(result.signal == SIGKILL);
    std::istringstream in(early + result.out);
    std::string text;
    std::size_t acked_now = 0;
    while (std::getline(in, text)) {
      if (in.eof()) break;  // cut by the kill
      acked.insert(nlohmann::json::parse(text).at("id").get<std::string>());
      ++acked_now;
    }
    if (acked_now > 0) ++killed_with_acks;
    INFO("cycle " << cycle);
    REQUIRE(check_store(path, acked) == "");
    // What is stored of this cycle is a prefix of the lines sent, in order.
    Store store = Store::open(path);
    auto cursor = store.read_aggregate("cycle-" + std::to_string(cycle));
    int expected = 0;
    while (auto e = cursor.next()) {
      auto j = nlohmann::json::parse(e->data);
      REQUIRE(j.at("line").get<int>() == expected);
      ++expected;
    }
  }
  // The kills landed while lines were being acknowledged, not only before
  // the first one.
  CHECK(killed_with_acks >= static_cast<std::size_t>(n) / 2);
  CHECK(check_history(scan(path)) == "");
}

TEST_CASE("no_meta_sync: SIGKILL loses no acknowledged append and shows no partial batch", "[crash][durability]") {
  // Options::durability's promise for no_meta_sync: an acknowledged append
  // survives a crash of the process (not a power loss).
  CrashRun run;
  const int cycles = std::max(6, run.n / 3);
  const std::size_t killed_with_acks = kill_worker_cycles(run, cycles, "m", {"--no-meta-sync"}, 20, 250);
  CHECK(killed_with_acks >= static_cast<std::size_t>(cycles) / 2);
  CHECK(check_history(scan(run.path)) == "");
}
