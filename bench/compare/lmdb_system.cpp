// Raw LMDB: the limit for Lighthouse's design. The same three B-trees —
// events by ID written with MDB_APPEND, and the two DUPSORT/DUPFIXED indexes —
// with no checksums and no MessagePack; durable appends from many threads and
// asynchronous appends share one group committer (AsyncAdapter).
#include <lmdb.h>

#include <mutex>
#include <stdexcept>

#include "system.h"

namespace compare {
namespace {

void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) throw std::runtime_error(std::string(what) + ": " + mdb_strerror(rc));
}

std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
  return out;
}

MDB_val val(const std::string& s) { return {s.size(), const_cast<char*>(s.data())}; }

// Materialises an event from its value: [len type][type][len agg][agg][data],
// into strings reused from one event to the next (as Lighthouse's cursor
// decodes into its events' storage): copies, no allocation per event.
std::uint64_t materialise(const MDB_val& v) {
  thread_local std::string type, aggregate, data;
  const char* p = static_cast<const char*>(v.mv_data);
  std::size_t tl = static_cast<unsigned char>(p[0]);
  type.assign(p + 1, tl);
  std::size_t al = static_cast<unsigned char>(p[1 + tl]);
  aggregate.assign(p + 2 + tl, al);
  data.assign(p + 2 + tl + al, v.mv_size - 2 - tl - al);
  return data.empty() ? 0 : 1;
}

class LmdbSystem : public AdaptedSystem {
 public:
  std::string name() const override { return "lmdb"; }

  void open(const std::filesystem::path& dir) override {
    std::filesystem::create_directories(dir);
    check(mdb_env_create(&env_), "create");
    mdb_env_set_maxdbs(env_, 4);
    mdb_env_set_mapsize(env_, std::size_t{1} << 36);
    check(mdb_env_open(env_, dir.c_str(), MDB_NOTLS, 0600), "open");
    MDB_txn* txn;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "begin");
    check(mdb_dbi_open(txn, "events", MDB_CREATE, &events_), "events");
    check(mdb_dbi_open(txn, "by_type", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &by_type_), "by_type");
    check(mdb_dbi_open(txn, "by_aggregate", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &by_aggregate_),
          "by_aggregate");
    MDB_cursor* c;
    mdb_cursor_open(txn, events_, &c);
    MDB_val k, v;
    if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0) {
      const auto* b = static_cast<const unsigned char*>(k.mv_data);
      for (int i = 0; i < 8; ++i) sequence_ = (sequence_ << 8) | b[8 + i];
    }
    mdb_cursor_close(c);
    check(mdb_txn_commit(txn), "commit");
  }

  void close() override {
    if (env_ != nullptr) mdb_env_close(env_);
    env_ = nullptr;
  }

  void append_batch(const std::vector<BenchEvent>& events) override {
    MDB_txn* txn;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "begin");
    for (const auto& e : events) put(txn, e);
    check(mdb_txn_commit(txn), "commit");
  }

  // Durable appends from many threads get the group commit that workload 3
  // gives every peer without one (AsyncAdapter: a committer thread takes
  // everything queued into one transaction), as Lighthouse has its own.
  void append_one(const BenchEvent& event) override { append_async(event).wait(); }

  std::uint64_t query_type(const std::string& type, Checks) override { return walk(by_type_, type, 0); }
  std::uint64_t read_aggregate(const std::string& aggregate, Checks) override {
    return walk(by_aggregate_, aggregate, 0);
  }

  std::uint64_t scan_all(const std::function<void()>& progress) override {
    MDB_txn* txn;
    check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "begin");
    MDB_cursor* c;
    mdb_cursor_open(txn, events_, &c);
    MDB_val k, v;
    std::uint64_t n = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      if (materialise(v) && ++n % 10'000 == 0) progress();
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return n;
  }

  ~LmdbSystem() override {
    stop_adapter();
    close();
  }

 private:
  // Called inside the write transaction: LMDB's writer lock orders the
  // callers, so the sequence needs no lock of its own.
  void put(MDB_txn* txn, const BenchEvent& e) {
    std::string key = be64(now_ns_++) + be64(++sequence_) + std::string(4, '\1');
    std::string value;
    value.reserve(2 + e.type.size() + e.aggregate.size() + e.data.size());
    value += static_cast<char>(e.type.size());
    value += e.type;
    value += static_cast<char>(e.aggregate.size());
    value += e.aggregate;
    value += e.data;
    MDB_val k = val(key), v = val(value);
    check(mdb_put(txn, events_, &k, &v, MDB_APPEND), "put events");
    MDB_val tk = val(e.type), tv = val(key);
    check(mdb_put(txn, by_type_, &tk, &tv, MDB_APPENDDUP), "put by_type");
    if (!e.aggregate.empty()) {
      MDB_val ak = val(e.aggregate), av = val(key);
      check(mdb_put(txn, by_aggregate_, &ak, &av, MDB_APPENDDUP), "put by_aggregate");
    }
  }

  std::uint64_t walk(MDB_dbi index, const std::string& name, int) {
    MDB_txn* txn;
    check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "begin");
    MDB_cursor* c;
    mdb_cursor_open(txn, index, &c);
    MDB_val k = val(name), v;
    std::uint64_t n = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
      MDB_val ev;
      check(mdb_get(txn, events_, &v, &ev), "get");
      n += materialise(ev);
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return n;
  }

  MDB_env* env_ = nullptr;
  MDB_dbi events_ = 0, by_type_ = 0, by_aggregate_ = 0;
  std::uint64_t sequence_ = 0;
  std::uint64_t now_ns_ = 1'700'000'000'000'000'000ull;
};

}  // namespace

std::unique_ptr<System> make_lmdb() { return std::make_unique<LmdbSystem>(); }

}  // namespace compare
