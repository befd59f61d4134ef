// A thin RAII layer over liblmdb. Private to the library.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "lighthouse/error.h"

namespace lighthouse::lmdb {

// A failure reported by LMDB itself (as opposed to a caller's mistake): a
// lighthouse::Error that also keeps LMDB's result code, so the write path can
// tell a full map or an I/O error from a conflict.
class LmdbError : public Error {
 public:
  LmdbError(ErrorCode code, const std::string& message, int rc) : Error(code, message), rc_(rc) {}
  int rc() const noexcept { return rc_; }

 private:
  int rc_;
};

// Throws LmdbError for an LMDB result other than MDB_SUCCESS; `what` names
// the operation.
[[noreturn]] void raise(int rc, std::string_view what);
inline void check(int rc, std::string_view what) {
  if (rc != MDB_SUCCESS) raise(rc, what);
}

inline MDB_val val(std::string_view bytes) noexcept {
  return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}
inline std::string_view view(const MDB_val& v) noexcept {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// Marks the calling thread as inside LMDB on `env` (reading or writing its
// pages through the map) while it lives: the store fault handler
// (lighthouse/faults.h) takes a fault there for damage of that store's
// file — LMDB trusts its pages, and a damaged one can make it follow a null
// or wild pointer. Every call into LMDB that touches pages is made inside
// one. Nests.
class InLmdb {
 public:
  explicit InLmdb(MDB_env* env) noexcept;
  explicit InLmdb(MDB_txn* txn) noexcept : InLmdb(mdb_txn_env(txn)) {}
  ~InLmdb();
  InLmdb(const InLmdb&) = delete;
  InLmdb& operator=(const InLmdb&) = delete;

 private:
  MDB_env* previous_;
};
// The environment the calling thread is inside LMDB on, or null.
// Async-signal-safe.
MDB_env* env_in_use() noexcept;

class Env {
 public:
  Env();
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  MDB_env* get() const noexcept { return env_; }
  void close() noexcept;

 private:
  MDB_env* env_ = nullptr;
};

// A transaction; aborted on destruction unless committed.
class Txn {
 public:
  Txn(MDB_env* env, bool read_only, MDB_txn* parent = nullptr);
  explicit Txn(MDB_txn* adopted) noexcept : txn_(adopted) {}
  Txn(Txn&& other) noexcept : txn_(other.txn_) { other.txn_ = nullptr; }
  ~Txn();
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  void commit();
  void abort() noexcept;
  MDB_txn* get() const noexcept { return txn_; }

 private:
  MDB_txn* txn_ = nullptr;
};

class Cursor {
 public:
  Cursor(MDB_txn* txn, MDB_dbi dbi);
  ~Cursor();
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  MDB_cursor* get() const noexcept { return cursor_; }
  // Positions the cursor; returns false on MDB_NOTFOUND.
  bool seek(MDB_val& key, MDB_val& value, MDB_cursor_op op);

 private:
  MDB_cursor* cursor_ = nullptr;
};

// mdb_get; returns false on MDB_NOTFOUND.
bool get(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view& out);
void put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value,
         unsigned flags = 0);
// mdb_del of `key` (all its values); returns false when it was absent.
bool del(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view what);
std::uint64_t entries(MDB_txn* txn, MDB_dbi dbi);

}  // namespace lighthouse::lmdb
