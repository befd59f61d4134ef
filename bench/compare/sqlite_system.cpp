// SQLite: WAL, synchronous=FULL (durable rows), one table with indexes on
// type and aggregate, prepared statements; a connection per thread.
#include <sqlite3.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "system.h"

namespace compare {
namespace {

void check(sqlite3* db, int rc, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db));
  }
}

struct Connection {
  sqlite3* db = nullptr;
  sqlite3_stmt* insert = nullptr;
  sqlite3_stmt* by_type = nullptr;
  sqlite3_stmt* by_aggregate = nullptr;
  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* commit = nullptr;

  explicit Connection(const std::string& path) {
    check(db, sqlite3_open(path.c_str(), &db), "open");
    sqlite3_busy_timeout(db, 60'000);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, "
         "aggregate TEXT NOT NULL, data BLOB NOT NULL)");
    exec("CREATE INDEX IF NOT EXISTS events_by_type ON events(type, seq)");
    exec("CREATE INDEX IF NOT EXISTS events_by_aggregate ON events(aggregate, seq)");
    prepare("INSERT INTO events(type, aggregate, data) VALUES (?, ?, ?)", &insert);
    prepare("SELECT type, aggregate, data FROM events WHERE type = ? ORDER BY seq", &by_type);
    prepare("SELECT type, aggregate, data FROM events WHERE aggregate = ? ORDER BY seq", &by_aggregate);
    prepare("BEGIN IMMEDIATE", &begin);
    prepare("COMMIT", &commit);
  }
  ~Connection() {
    for (auto* s : {insert, by_type, by_aggregate, begin, commit}) sqlite3_finalize(s);
    sqlite3_close(db);
  }
  void exec(const char* sql) { check(db, sqlite3_exec(db, sql, nullptr, nullptr, nullptr), sql); }
  void prepare(const char* sql, sqlite3_stmt** stmt) {
    check(db, sqlite3_prepare_v2(db, sql, -1, stmt, nullptr), sql);
  }
  void step(sqlite3_stmt* stmt, const char* what) {
    check(db, sqlite3_step(stmt), what);
    sqlite3_reset(stmt);
  }
  void append(const std::vector<BenchEvent>& events) {
    step(begin, "begin");
    for (const auto& e : events) {
      sqlite3_bind_text(insert, 1, e.type.data(), static_cast<int>(e.type.size()), SQLITE_STATIC);
      sqlite3_bind_text(insert, 2, e.aggregate.data(), static_cast<int>(e.aggregate.size()), SQLITE_STATIC);
      sqlite3_bind_blob(insert, 3, e.data.data(), static_cast<int>(e.data.size()), SQLITE_STATIC);
      step(insert, "insert");
    }
    step(commit, "commit");
  }
  std::uint64_t select(sqlite3_stmt* stmt, const std::string& key) {
    sqlite3_bind_text(stmt, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    std::uint64_t n = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::string type(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)),
                       static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
      std::string aggregate(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1)),
                            static_cast<std::size_t>(sqlite3_column_bytes(stmt, 1)));
      std::string data(static_cast<const char*>(sqlite3_column_blob(stmt, 2)),
                       static_cast<std::size_t>(sqlite3_column_bytes(stmt, 2)));
      n += data.empty() ? 0 : 1;
    }
    sqlite3_reset(stmt);
    return n;
  }
};

class SqliteSystem : public AdaptedSystem {
 public:
  std::string name() const override { return "sqlite"; }
  void open(const std::filesystem::path& dir) override {
    std::filesystem::create_directories(dir);
    path_ = (dir / "events.db").string();
    connection();
  }
  void close() override {
    stop_adapter();
    std::lock_guard lock(mutex_);
    connections_.clear();
  }
  void append_batch(const std::vector<BenchEvent>& events) override { connection().append(events); }
  void append_one(const BenchEvent& event) override { connection().append({event}); }
  std::uint64_t query_type(const std::string& type, Checks) override {
    auto& c = connection();
    return c.select(c.by_type, type);
  }
  std::uint64_t read_aggregate(const std::string& aggregate, Checks) override {
    auto& c = connection();
    return c.select(c.by_aggregate, aggregate);
  }
  std::uint64_t scan_all(const std::function<void()>& progress) override {
    auto& c = connection();
    sqlite3_stmt* stmt;
    c.prepare("SELECT type, aggregate, data FROM events ORDER BY seq", &stmt);
    std::uint64_t n = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::string data(static_cast<const char*>(sqlite3_column_blob(stmt, 2)),
                       static_cast<std::size_t>(sqlite3_column_bytes(stmt, 2)));
      std::string type(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
      if (!data.empty() && ++n % 10'000 == 0) progress();
    }
    sqlite3_finalize(stmt);
    return n;
  }

  ~SqliteSystem() override { close(); }

 private:
  Connection& connection() {
    std::lock_guard lock(mutex_);
    auto& c = connections_[std::this_thread::get_id()];
    if (!c) c = std::make_unique<Connection>(path_);
    return *c;
  }
  std::string path_;
  std::mutex mutex_;
  std::map<std::thread::id, std::unique_ptr<Connection>> connections_;
};

}  // namespace

std::unique_ptr<System> make_sqlite() { return std::make_unique<SqliteSystem>(); }

}  // namespace compare
