#include "lmdb/lmdb.h"

#include <cerrno>
#include <cstring>

namespace lighthouse::lmdb {

namespace {
ErrorCode code_of(int rc) {
  switch (rc) {
    case MDB_NOTFOUND: return ErrorCode::not_found;
    case MDB_CORRUPTED:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    // A cursor stack of 32 pages means a tree deeper than any valid one: a
    // damaged branch page (found with record format 2's page layout).
    case MDB_CURSOR_FULL:
    case MDB_PAGE_NOTFOUND: return ErrorCode::corruption;
    case MDB_PANIC: return ErrorCode::store_failed;
    default: return rc > 0 || rc == MDB_MAP_FULL ? ErrorCode::io_error : ErrorCode::internal;
  }
}
}  // namespace

void raise(int rc, std::string_view what) {
  std::string message = std::string(what) + ": " + mdb_strerror(rc);
  if (rc == MDB_PANIC) message += " (the store must be closed and reopened)";
  if (rc == MDB_MAP_FULL) message += " (the store's map is full)";
  if (code_of(rc) == ErrorCode::corruption) {
    message = std::string(what) + ": the store's file is damaged (LMDB: " + mdb_strerror(rc) +
              "); run `lighthouse verify`";
  }
  throw LmdbError(code_of(rc), message, rc);
}

namespace {
// Initial-exec: readable from a signal handler without the dynamic TLS
// path (which may allocate).
thread_local MDB_env* in_use __attribute__((tls_model("initial-exec"))) = nullptr;
}  // namespace

InLmdb::InLmdb(MDB_env* env) noexcept : previous_(in_use) { in_use = env; }
InLmdb::~InLmdb() { in_use = previous_; }
MDB_env* env_in_use() noexcept { return in_use; }

Env::Env() { check(mdb_env_create(&env_), "mdb_env_create"); }
Env::~Env() { close(); }
void Env::close() noexcept {
  if (env_ != nullptr) mdb_env_close(env_);
  env_ = nullptr;
}

Txn::Txn(MDB_env* env, bool read_only, MDB_txn* parent) {
  check(mdb_txn_begin(env, parent, read_only ? MDB_RDONLY : 0, &txn_), "mdb_txn_begin");
}
Txn::~Txn() { abort(); }
void Txn::commit() {
  MDB_txn* txn = txn_;
  txn_ = nullptr;
  const InLmdb inside(txn);
  check(mdb_txn_commit(txn), "mdb_txn_commit");
}
void Txn::abort() noexcept {
  if (txn_ != nullptr) mdb_txn_abort(txn_);
  txn_ = nullptr;
}

Cursor::Cursor(MDB_txn* txn, MDB_dbi dbi) {
  const InLmdb inside(txn);  // a database of another process's making is read here
  check(mdb_cursor_open(txn, dbi, &cursor_), "mdb_cursor_open");
}
Cursor::~Cursor() {
  if (cursor_ != nullptr) mdb_cursor_close(cursor_);
}
bool Cursor::seek(MDB_val& key, MDB_val& value, MDB_cursor_op op) {
  const InLmdb inside(mdb_cursor_txn(cursor_));
  int rc = mdb_cursor_get(cursor_, &key, &value, op);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, "mdb_cursor_get");
  return true;
}

bool del(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view what) {
  MDB_val k = val(key);
  const InLmdb inside(txn);
  const int rc = mdb_del(txn, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, what);
  return true;
}

bool get(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view& out) {
  MDB_val k = val(key);
  MDB_val v;
  const InLmdb inside(txn);
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, "mdb_get");
  out = view(v);
  return true;
}

void put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value,
         unsigned flags) {
  MDB_val k = val(key);
  MDB_val v = val(value);
  const InLmdb inside(txn);
  check(mdb_put(txn, dbi, &k, &v, flags), "mdb_put");
}

std::uint64_t entries(MDB_txn* txn, MDB_dbi dbi) {
  MDB_stat st;
  const InLmdb inside(txn);
  check(mdb_stat(txn, dbi, &st), "mdb_stat");
  return st.ms_entries;
}

}  // namespace lighthouse::lmdb
