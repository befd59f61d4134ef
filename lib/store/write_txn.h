// WriteTxn — one LMDB write transaction's view of the store: checks and
// writes batches. Everything the IDs depend on (last sequence, timestamp and
// chain) is read from the store inside the transaction, so several threads
// and processes can append to one store.
#pragma once

#include <lmdb.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "lighthouse/store.h"
#include "store/store_impl.h"

namespace lighthouse {

class WriteTxn {
 public:
  WriteTxn(MDB_txn* txn, const Databases& dbs, const Options& options, std::uint32_t node_id,
           std::uint64_t now);

  // Checks and writes one batch. Throws lighthouse::Error, writing nothing of
  // the batch, when its idempotency or expectations fail; throws
  // lmdb::LmdbError when LMDB fails (then the whole transaction is lost).
  AppendResult write(const Batch& batch);

  // Writes go to `txn` from now on (a nested transaction, or back to the
  // parent). REQUIRES: close_cursors() was called before the transaction
  // in use ended.
  void use_txn(MDB_txn* txn) noexcept;

  // Closes the cursors this object opened. Must be called before the
  // transaction they belong to commits or aborts: LMDB frees a write
  // transaction's cursors when it ends. (The destructor closes them too, for
  // the error paths, where the transaction is still alive.)
  void close_cursors() noexcept;
  WriteState state() const noexcept { return state_; }
  void restore(const WriteState& state) noexcept { state_ = state; }

  // Writes the meta counters. Returns true iff anything was written (a pure
  // idempotent replay writes nothing and need not commit).
  bool finish();

 private:
  // The aggregate's last version; `kept` tells whether it came from
  // aggregate_heads (all of its events truncated).
  std::uint64_t head(std::string_view aggregate, bool* kept = nullptr);
  std::optional<AppendResult> check_idempotency(const Batch& batch);
  void check_expectations(const Batch& batch);
  AppendedEvent write_event(const EventData& e);
  lmdb::Cursor& cursor(std::unique_ptr<lmdb::Cursor>& slot, MDB_dbi dbi);
  static void put(lmdb::Cursor& c, std::string_view key, std::string_view value, unsigned flags);

  MDB_txn* txn_;
  const Databases& dbs_;
  const Options& options_;
  std::uint32_t node_id_;
  std::uint64_t now_;
  WriteState state_;
  std::uint64_t first_sequence_ = 0;
  // Reused for every event of the transaction.
  std::unique_ptr<lmdb::Cursor> events_cursor_, type_cursor_, aggregate_cursor_;
  std::string record_;
  // The batch's aggregates: their head before it, read before any write.
  struct Head {
    std::uint64_t version = 0;
    bool kept = false;  // from aggregate_heads (all of its events truncated)
  };
  std::map<std::string, Head, std::less<>> heads_;
};

}  // namespace lighthouse
