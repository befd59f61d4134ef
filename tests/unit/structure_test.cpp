// The structural check of the LMDB file, the damage mark, salvage and the
// store fault handler (issue 19). Byte flips by page class through the tool
// are in tests/tool/test_structure.py.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include <lmdb.h>

#include "lighthouse/lighthouse.h"
#include "lmdb/file_check.h"
#include "lmdb/page_format.h"
#include "support/events.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using namespace lighthouse::testing;
namespace fs = std::filesystem;

namespace {

// A store of several trees: DUPSORT sub-pages and sub-databases, overflow
// pages, idempotency keys, a checkpoint, and a free list of many commits.
std::vector<EventId> build_store(const fs::path& path) {
  Store store = Store::open(path);
  std::vector<EventId> ids;
  for (int round = 0; round < 20; ++round) {
    Batch batch;
    for (int i = 0; i < 100; ++i) {
      batch.events.push_back(keyed(i % 4 == 0 ? "Rare" + std::to_string(i) : "Common", "agg-" + std::to_string(i % 9),
                                   "key-" + std::to_string(round) + "-" + std::to_string(i)));
    }
    if (round % 5 == 0) batch.events.push_back(event("Big", "", "\xc5\x27\x10" + std::string(10000, 'b')));
    for (const auto& e : store.append_batch(batch).events) ids.push_back(e.id);
  }
  store.set_checkpoint("projector", ids[700]);
  return ids;
}

// A number LMDB's own mdb_stat prints for the store ("  Free pages: 22").
std::uint64_t mdb_stat_number(const fs::path& store, const std::string& label) {
  const std::string command = "mdb_stat -ef '" + store.string() + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  REQUIRE(::pclose(pipe) == 0);
  const auto at = out.find(label + ": ");
  INFO(out);
  REQUIRE(at != std::string::npos);
  return std::stoull(out.substr(at + label.size() + 2));
}

void flip_byte(const fs::path& file, std::uint64_t offset, unsigned char mask) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ mask);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

// Damages the flags of the free list's root page: LMDB would reuse live
// pages on the next write, the file's trees stay readable.
void damage_free_list(const fs::path& store) {
  const auto meta = lmdb::check_meta_pages(store / "data.mdb").current();
  REQUIRE(meta.free_root != lmdb::kNoPage);
  flip_byte(store / "data.mdb", meta.free_root * meta.page_size + lmdb::kPageFlags, 0x10);
}

bool has_structure_problem(const VerifyReport& report) {
  for (const auto& p : report.problems) {
    if (p.category == "structure") return true;
  }
  return false;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string file_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The bytes of a data file as a reader sees them while a writer commits:
// the first `switch_after` reads see `before`, every later read `after`.
class CommittingSource : public lmdb::PageSource {
 public:
  CommittingSource(std::string before, std::string after, int switch_after)
      : before_(std::move(before)), after_(std::move(after)), switch_after_(switch_after) {}
  std::uint64_t size() const override { return after_.size(); }
  bool read(std::uint64_t offset, std::size_t n, std::string& out) const override {
    const std::string& bytes = reads_++ < switch_after_ ? before_ : after_;
    if (offset + n > bytes.size()) return false;
    out.assign(bytes, offset, n);
    return true;
  }

 private:
  std::string before_, after_;
  int switch_after_;
  mutable int reads_ = 0;
};

}  // namespace

TEST_CASE("the structural check accounts for every page as LMDB's mdb_stat counts them", "[structure]") {
  TempDir dir;
  build_store(dir / "store");
  const auto report = lmdb::walk_structure(dir / "store" / "data.mdb");
  for (const auto& p : report.problems) INFO("page " << p.page << " (" << p.database << "): " << p.detail);
  CHECK(report.ok());
  CHECK(report.leaked_pages == 0);
  CHECK(report.free_pages > 0);
  CHECK(report.pages == mdb_stat_number(dir / "store", "Number of pages used"));
  CHECK(report.free_pages == mdb_stat_number(dir / "store", "Free pages"));
  CHECK(report.pages == 2 + report.tree_pages + report.free_pages);
}

TEST_CASE("verify walks a pinned snapshot: writers of this and another process cause no false reports",
          "[structure][concurrency]") {
  TempDir dir;
  build_store(dir / "store");
  Store store = Store::open(dir / "store");
  const auto worker = spawn({helper_path("APPEND_WORKER"), (dir / "store").string(), "3000", "--batch", "3",
                             "--no-meta-sync"});
  std::atomic<bool> stop{false};
  std::atomic<int> appended{0};
  std::thread writer([&] {
    for (int i = 0; i < 5000 && !stop.load(); ++i) {
      store.append(event("Live", "live-" + std::to_string(i % 5)));
      ++appended;
    }
  });
  for (int waited = 0; appended.load() == 0 && waited < 10000; ++waited) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const int before = appended.load();
  for (int verified = 0; verified < 8; ++verified) {
    const VerifyReport report = store.verify();
    std::string problems;  // (an INFO inside a loop is gone before the REQUIRE)
    for (const auto& p : report.problems) problems += p.category + " " + p.subject + ": " + p.detail + "\n";
    INFO(problems);
    REQUIRE(report.ok());
    CHECK(report.pages_checked > 2);
  }
  CHECK(appended.load() > before);  // the writer wrote while verify walked
  stop = true;
  writer.join();
  CHECK(wait(worker).exit_code == 0);
  CHECK_FALSE(fs::exists(dir / "store" / "lighthouse-damaged"));
  CHECK(store.verify().ok());
}

TEST_CASE("a walk of a pinned snapshot whose meta pages a writer rewrites while they are read tries again",
          "[structure][concurrency]") {
  // Reads of the two meta pages, or of one twice, a commit or two apart,
  // saw transactions that are not consecutive, or another snapshot's
  // roots: damage that was never there. Both parities of the pinned
  // transaction, a commit between any two of the first reads.
  for (int round = 0; round < 2; ++round) {
    DYNAMIC_SECTION("round " << round) {
      TempDir dir;
      build_store(dir / "store");
      if (round == 1) Store::open(dir / "store").append(event("One more"));
      MDB_env* env = nullptr;
      REQUIRE(mdb_env_create(&env) == 0);
      REQUIRE(mdb_env_open(env, (dir / "store").c_str(), MDB_RDONLY, 0644) == 0);
      MDB_txn* pinned = nullptr;
      REQUIRE(mdb_txn_begin(env, nullptr, MDB_RDONLY, &pinned) == 0);
      const std::uint64_t txnid = mdb_txn_id(pinned);
      std::string before = file_bytes(dir / "store" / "data.mdb");
      REQUIRE(run({helper_path("APPEND_WORKER"), (dir / "store").string(), "3"}).exit_code == 0);
      const std::string after = file_bytes(dir / "store" / "data.mdb");
      for (int switch_after = 0; switch_after <= 8; ++switch_after) {
        INFO("the writer commits after read " << switch_after);
        const CommittingSource source(before, after, switch_after);
        const auto report = lmdb::walk_structure(source, lmdb::WalkOptions{txnid, 10});
        std::string problems;
        for (const auto& p : report.problems) problems += "page " + std::to_string(p.page) + ": " + p.detail + "\n";
        INFO(problems);
        CHECK(report.problem_count == 0);
        // The meta pages read as they were before and after: the walk of
        // the pinned snapshot goes on only from bytes that stayed.
        CHECK(report.snapshot_gone == (switch_after < 4));
      }
      mdb_txn_abort(pinned);
      mdb_env_close(env);
    }
  }
}

TEST_CASE("a damaged meta page is corruption on open, never ENOMEM", "[structure]") {
  struct Field {
    const char* name;
    std::uint64_t offset;
    unsigned char mask;
  };
  for (const Field field : {Field{"magic", lmdb::kMetaMagic, 0x01}, Field{"version", lmdb::kMetaVersion, 0x02},
                            Field{"map size", lmdb::kMetaMapSize + 7, 0x40},
                            Field{"last page", lmdb::kMetaLastPage + 3, 0x01},
                            Field{"transaction", lmdb::kMetaTxnid + 2, 0x01},
                            Field{"main root", lmdb::kMetaMainDb + lmdb::kDbRoot + 4, 0x01}}) {
    DYNAMIC_SECTION(field.name) {
      TempDir dir;
      build_store(dir / "store");
      const auto check = lmdb::check_meta_pages(dir / "store" / "data.mdb");
      REQUIRE(check.ok());
      const int current = check.metas[1].txnid > check.metas[0].txnid ? 1 : 0;
      flip_byte(dir / "store" / "data.mdb", static_cast<std::uint64_t>(current) * check.metas[0].page_size + field.offset,
                field.mask);
      CHECK(error_code_of([&] { Store::open(dir / "store"); }) == ErrorCode::corruption);
      const std::string message = message_of([&] { Store::open(dir / "store"); });
      CHECK(message.find("meta page") != std::string::npos);
      CHECK(message.find("Cannot allocate memory") == std::string::npos);
      Options ro;
      ro.read_only = true;
      CHECK(error_code_of([&] { Store::open(dir / "store", ro); }) == ErrorCode::corruption);
    }
  }
}

TEST_CASE("verify finds a damaged free list, marks the store, and every writer obeys the mark", "[structure]") {
  TempDir dir;
  const auto ids = build_store(dir / "store");
  damage_free_list(dir / "store");
  Store store = Store::open(dir / "store");
  const VerifyReport report = store.verify();
  CHECK_FALSE(report.ok());
  CHECK(has_structure_problem(report));
  REQUIRE(fs::exists(dir / "store" / "lighthouse-damaged"));
  // Reads go on: they are what salvage and an operator need.
  CHECK(store.get(ids[5]).id == ids[5]);
  CHECK(error_code_of([&] { store.append(event("T")); }) == ErrorCode::corruption);
  CHECK(message_of([&] { store.append(event("T")); }).find("damaged") != std::string::npos);
  CHECK(error_code_of([&] { store.set_checkpoint("projector", ids[9]); }) == ErrorCode::corruption);
  CHECK(error_code_of([&] { store.enter_emergency("test"); }) == ErrorCode::corruption);
  // Another process's writer obeys the mark too.
  const auto other = run({helper_path("APPEND_WORKER"), (dir / "store").string(), "1"});
  CHECK(other.exit_code != 0);
  const RepairReport repaired = store.repair();
  CHECK(repaired.refused.find("salvage") != std::string::npos);
  CHECK(fs::exists(dir / "store" / "lighthouse-damaged"));
  CHECK(store.stats().event_count == ids.size());
}

TEST_CASE("repair of a whole structure clears a damage mark", "[structure]") {
  TempDir dir;
  build_store(dir / "store");
  Store store = Store::open(dir / "store");
  {
    std::ofstream mark(dir / "store" / "lighthouse-damaged");
    mark << "verify found the file's structure damaged: page 7 (events): a test's mark\n";
  }
  const std::string refused = message_of([&] { store.append(event("T")); });
  CHECK(refused.find("page 7 (events): a test's mark") != std::string::npos);
  const RepairReport repaired = store.repair();
  CHECK(repaired.refused.empty());
  CHECK_FALSE(fs::exists(dir / "store" / "lighthouse-damaged"));
  CHECK_NOTHROW(store.append(event("T")));
}

TEST_CASE("Options::check_structure_on_open refuses a damaged store and marks it", "[structure][options]") {
  TempDir dir;
  build_store(dir / "store");
  Options check;
  check.check_structure_on_open = true;
  { Store whole = Store::open(dir / "store", check); }
  damage_free_list(dir / "store");
  { Store unchecked = Store::open(dir / "store"); }  // off by default: the meta pages only
  Options ro = check;
  ro.read_only = true;
  CHECK(error_code_of([&] { Store::open(dir / "store", ro); }) == ErrorCode::corruption);
  CHECK_FALSE(fs::exists(dir / "store" / "lighthouse-damaged"));  // read-only writes nothing
  const std::string message = message_of([&] { Store::open(dir / "store", check); });
  CHECK(message.find("structure is damaged: page ") != std::string::npos);
  CHECK(fs::exists(dir / "store" / "lighthouse-damaged"));
}

TEST_CASE("salvage of a whole store copies every event, checkpoint and the chain", "[structure][salvage]") {
  TempDir dir;
  const auto ids = build_store(dir / "store");
  const SalvageReport report = Store::salvage(dir / "store", dir / "copy");
  CHECK(report.complete());
  CHECK(report.events_salvaged == ids.size());
  CHECK(report.first_sequence == 1);
  CHECK(report.last_sequence == ids.size());
  CHECK(report.lost.empty());
  CHECK(report.checkpoints_salvaged == 1);
  CHECK(report.after_gap_file.empty());
  Store original = Store::open(dir / "store");
  Store copy = Store::open(dir / "copy");
  CHECK(copy.verify().ok());
  CHECK(copy.checkpoint("projector") == ids[700]);
  CHECK(copy.stats().node_id == original.stats().node_id);
  for (std::size_t i = 0; i < ids.size(); i += 97) {
    const auto a = original.get(ids[i]), b = copy.get(ids[i]);
    CHECK(a.chain == b.chain);
    CHECK(a.data == b.data);
    CHECK(a.idempotency_key == b.idempotency_key);
    CHECK(a.aggregate_version == b.aggregate_version);
  }
  // The copy goes on where the old store ended.
  const auto next = copy.append(event("T", "agg-1")).events[0];
  CHECK(next.id.sequence == ids.size() + 1);
  CHECK(copy.verify().ok());
}

TEST_CASE("salvage of a truncated store keeps its base", "[structure][salvage]") {
  TempDir dir;
  std::vector<EventId> ids;
  {
    Store store = Store::open(dir / "store");
    for (int i = 0; i < 100; ++i) ids.push_back(store.append(event("T", "a" + std::to_string(i % 3))).events[0].id);
    export_archive(store, dir / "archive");
    store.truncate_before(ids[40], dir / "archive");
  }
  const SalvageReport report = Store::salvage(dir / "store", dir / "copy");
  CHECK(report.complete());
  CHECK(report.first_sequence == 41);
  CHECK(report.events_salvaged == 60);
  Store copy = Store::open(dir / "copy");
  CHECK(copy.stats().base_sequence == 41);
  CHECK(copy.verify().ok());
  CHECK(copy.append(event("T", "a1")).events[0].aggregate_version == 34);  // 33 before it
}

TEST_CASE("salvage refuses a destination that is not new or empty, and writes nothing", "[structure][salvage]") {
  TempDir dir;
  build_store(dir / "store");
  fs::create_directories(dir / "full");
  std::ofstream(dir / "full" / "x") << "x";
  CHECK(error_code_of([&] { Store::salvage(dir / "store", dir / "full"); }) == ErrorCode::invalid_argument);
  CHECK(error_code_of([&] { Store::salvage(dir / "store", dir / "store" / "inner"); }) ==
        ErrorCode::invalid_argument);
  CHECK(error_code_of([&] { Store::salvage(dir / "nothing", dir / "new"); }) == ErrorCode::not_found);
  CHECK_FALSE(fs::exists(dir / "new"));
  CHECK_FALSE(fs::exists(dir / "store" / "inner"));
  CHECK(fs::directory_iterator(dir / "full")->path().filename() == "x");
}

TEST_CASE("the store fault handler turns a fault inside a store's map into exit 5", "[structure][faults]") {
  TempDir dir;
  build_store(dir / "store");
  const auto shrunk = run({helper_path("FAULT_READER"), (dir / "store").string(), "shrink"});
  INFO(shrunk.out);
  CHECK(shrunk.exit_code == 5);
  CHECK(shrunk.out.find("lighthouse: store '" + (dir / "store").string() + "' is damaged") != std::string::npos);
  CHECK(shrunk.out.find("run `lighthouse verify") != std::string::npos);
  // Installed after the store was opened, the handler finds its map too
  // (before, no open reads /proc/self/maps: that was most of an open's time).
  build_store(dir / "store-2");
  const auto located = run({helper_path("FAULT_READER"), (dir / "store-2").string(), "locate-late"});
  CHECK(located.out == "before 0 after 1 " + fs::canonical(dir / "store-2").string() + "\n");
  const auto late = run({helper_path("FAULT_READER"), (dir / "store-2").string(), "shrink-late"});
  INFO(late.out);
  CHECK(late.exit_code == 5);
  CHECK(late.out.find("lighthouse: store '" + (dir / "store-2").string() + "' is damaged") != std::string::npos);
  // A fault anywhere else stays a crash.
  const auto null = run({helper_path("FAULT_READER"), (dir / "store").string(), "null"});
  CHECK(null.signal == SIGSEGV);
  CHECK(null.out.find("is damaged") == std::string::npos);
  CHECK_FALSE(store_map_fault(&null, nullptr, 0));
}
