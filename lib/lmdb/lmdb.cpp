#include "lmdb/lmdb.h"

#include <cerrno>
#include <cstring>

namespace lighthouse::lmdb {

void raise(int rc, std::string_view what) {
  std::string message = std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_NOTFOUND:
      throw Error(ErrorCode::not_found, message);
    case MDB_CORRUPTED:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_PAGE_NOTFOUND:
      throw Error(ErrorCode::corruption, message);
    case MDB_PANIC:
      throw Error(ErrorCode::store_failed,
                  message + " (the store must be closed and reopened)");
    case MDB_MAP_FULL:
      throw Error(ErrorCode::io_error, message + " (the store's map is full)");
    case EACCES:
    case EROFS:
    case ENOENT:
    case ENOSPC:
    case EIO:
    case ENOMEM:
      throw Error(ErrorCode::io_error, message);
    default:
      throw Error(rc > 0 ? ErrorCode::io_error : ErrorCode::internal, message);
  }
}

Env::Env() { check(mdb_env_create(&env_), "mdb_env_create"); }
Env::~Env() { close(); }
void Env::close() noexcept {
  if (env_ != nullptr) mdb_env_close(env_);
  env_ = nullptr;
}

Txn::Txn(MDB_env* env, bool read_only) {
  check(mdb_txn_begin(env, nullptr, read_only ? MDB_RDONLY : 0, &txn_), "mdb_txn_begin");
}
Txn::~Txn() { abort(); }
void Txn::commit() {
  MDB_txn* txn = txn_;
  txn_ = nullptr;
  check(mdb_txn_commit(txn), "mdb_txn_commit");
}
void Txn::abort() noexcept {
  if (txn_ != nullptr) mdb_txn_abort(txn_);
  txn_ = nullptr;
}

Cursor::Cursor(MDB_txn* txn, MDB_dbi dbi) {
  check(mdb_cursor_open(txn, dbi, &cursor_), "mdb_cursor_open");
}
Cursor::~Cursor() {
  if (cursor_ != nullptr) mdb_cursor_close(cursor_);
}
bool Cursor::seek(MDB_val& key, MDB_val& value, MDB_cursor_op op) {
  int rc = mdb_cursor_get(cursor_, &key, &value, op);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, "mdb_cursor_get");
  return true;
}

bool get(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view& out) {
  MDB_val k = val(key);
  MDB_val v;
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
  check(mdb_put(txn, dbi, &k, &v, flags), "mdb_put");
}

std::uint64_t entries(MDB_txn* txn, MDB_dbi dbi) {
  MDB_stat st;
  check(mdb_stat(txn, dbi, &st), "mdb_stat");
  return st.ms_entries;
}

}  // namespace lighthouse::lmdb
