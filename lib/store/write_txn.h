// WriteTxn — one LMDB write transaction's view of the store: checks and
// writes batches of new events (append mode) or events as they were
// archived (import mode), through the same code that puts a record and its
// index entries. Everything the IDs depend on (last sequence, timestamp and
// chain) is read from the store inside the transaction, so several threads
// and processes can append to one store.
#pragma once

#include <lmdb.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codec/record.h"
#include "lighthouse/store.h"
#include "lmdb/lmdb.h"
#include "store/schema.h"

namespace lighthouse {

// The whole transaction is lost and must be aborted: a batch failed after
// part of it was written (its other requests fail with it). Distinct from a
// request's own error (a conflict, checked before anything is written) and
// from LMDB's errors (lmdb::LmdbError).
class TransactionLost : public Error {
 public:
  using Error::Error;
};

class WriteTxn {
 public:
  WriteTxn(MDB_txn* txn, const Databases& dbs, const Options& options, std::uint32_t node_id, std::uint64_t now);

  // Append mode: checks and writes one batch. Throws lighthouse::Error,
  // writing nothing of the batch, when its idempotency or expectations fail;
  // TransactionLost when it failed part way; lmdb::LmdbError when LMDB fails
  // (both lose the whole transaction).
  // `hashes`, when given, holds each event's content hashes (computed by
  // the appending thread, in the batch's order).
  // `stamp`: the trace context the events without one of their own carry
  // (the append's, held once per request; none by default).
  AppendResult write(const Batch& batch, const codec::ContentHashes* hashes = nullptr,
                     codec::TraceStamp stamp = {});

  // Import mode: writes archived events as they are (IDs, checksums,
  // chain), each required to follow the store's last event: the next
  // sequence, a later timestamp, the chain, the aggregate's next version.
  // Throws Error(invalid_argument) or Error(corruption) naming the event
  // otherwise; the transaction must then be aborted.
  void import(const std::vector<RecordedEvent>& events);

  // Writes go to `txn` from now on (a nested transaction, or back to the
  // parent). REQUIRES: close_cursors() was called before the transaction in
  // use ended.
  void use_txn(MDB_txn* txn) noexcept;

  // Closes the cursors this object opened. Must be called before the
  // transaction they belong to commits or aborts: LMDB frees a write
  // transaction's cursors when it ends. (The destructor closes them too, for
  // the error paths, where the transaction is still alive.)
  void close_cursors() noexcept;
  const schema::Counters& state() const noexcept { return state_; }
  void restore(const schema::Counters& state) noexcept { state_ = state; }

  // Writes the meta counters. Returns true iff anything was written (a pure
  // idempotent replay writes nothing and need not commit).
  bool finish();

 private:
  struct Head {
    std::uint64_t version = 0;
    bool kept = false;  // from aggregate_heads (all of its events truncated)
  };
  // The aggregate's last version: its last entry in by_aggregate, or the
  // head kept in aggregate_heads when truncation dropped all of its events.
  Head read_head(std::string_view aggregate);
  std::optional<AppendResult> check_idempotency(const Batch& batch, const codec::ContentHashes* hashes);
  void check_expectations(const Batch& batch);
  AppendedEvent write_event(const EventData& e, const codec::ContentHashes* hashes, codec::TraceStamp stamp);
  // Puts a record under `key` and its entries in every index.
  void put_event(std::string_view key, std::string_view record, std::string_view type, std::string_view aggregate,
                 Head* head, std::uint64_t version, const std::string* idempotency_key, const Sha256& content_hash);
  lmdb::Cursor& cursor(std::unique_ptr<lmdb::Cursor>& slot, MDB_dbi dbi);
  static void put(lmdb::Cursor& c, std::string_view key, std::string_view value, unsigned flags);

  MDB_txn* txn_;
  const Databases& dbs_;
  const Options& options_;
  std::uint32_t node_id_;
  std::uint64_t now_;
  schema::Counters state_;
  std::uint64_t first_sequence_ = 0;
  // Reused for every event of the transaction.
  std::unique_ptr<lmdb::Cursor> events_cursor_, type_cursor_, aggregate_cursor_;
  std::string record_;
  // The aggregates written in this transaction: their head so far (append
  // mode reads a batch's heads before any write, so a failing batch has
  // written nothing).
  std::map<std::string, Head, std::less<>> heads_;
};

}  // namespace lighthouse
