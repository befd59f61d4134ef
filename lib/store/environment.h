// Environment — the store's LMDB environment and everything that guards it:
// the lifecycle lock (open until close()), the map lock (no transaction of
// this process while the map is resized), read and write transactions, map
// growth, and the failure state after an I/O error or MDB_PANIC.
//
// Thread safety: safe for concurrent use. Write transactions are begun only
// by the committer thread (LMDB has one writer per environment).
#pragma once

#include <lmdb.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>

#include "lighthouse/error.h"
#include "lighthouse/options.h"
#include "lmdb/file_check.h"
#include "lmdb/lmdb.h"

namespace lighthouse {

class Environment {
 public:
  // Opens the environment of the store directory `path`. Errors:
  // corruption (an empty data file, not an LMDB environment, a data file
  // shorter than its last page), io_error and LMDB's own errors.
  Environment(std::filesystem::path path, const Options& options);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  MDB_env* get() const noexcept { return env_.get(); }
  const std::filesystem::path& path() const noexcept { return path_; }

  // Held shared by every operation on the store, exclusively by close().
  // Throws Error(closed) once the store is closed.
  std::shared_lock<std::shared_mutex> use() const;
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  // Closes the environment; later use() raises Error(closed). Idempotent.
  void close() noexcept;

  // A read transaction, holding the map lock shared while it lives.
  struct ReadTxn {
    std::shared_lock<std::shared_mutex> map;
    lmdb::Txn txn;
    MDB_txn* get() const noexcept { return txn.get(); }
  };
  std::unique_ptr<ReadTxn> begin_read() const;

  // The write transaction of the committer, holding the map lock shared
  // while it lives (no other thread of this process may resize meanwhile).
  class WriteHandle {
   public:
    WriteHandle(std::shared_lock<std::shared_mutex> map, MDB_txn* txn) : map_(std::move(map)), txn_(txn) {}
    MDB_txn* get() const noexcept { return txn_.get(); }
    void commit() { txn_.commit(); }

   private:
    std::shared_lock<std::shared_mutex> map_;
    lmdb::Txn txn_;  // destroyed (aborted) before the lock is released
  };
  std::unique_ptr<WriteHandle> begin_write();

  // Runs `body` in a write transaction and commits it; when the map is full,
  // aborts, grows the map and runs `body` again. For the committer thread.
  void with_write_txn(const std::function<void(MDB_txn*)>& body);

  // Doubles the map after MDB_MAP_FULL (up to Options::max_map_size: then
  // Error(limit_exceeded)). REQUIRES: no transaction of this process is
  // active on the calling thread.
  void grow_map();
  // Adopts a map grown by another process (MDB_MAP_RESIZED).
  void adopt_map_size() const;
  // Bytes up to the last used page, and the map's size.
  std::uint64_t map_used_bytes() const;
  std::uint64_t map_size_bytes() const;
  unsigned readers_in_use() const;

  // The structural check of the file (lmdb/file_check.h) on the snapshot of
  // a read transaction it holds while it walks — so that writers of any
  // process cause no false reports — returned with that transaction. A
  // snapshot rewritten before its meta page was read is walked again on a
  // newer one (bounded). Errors: io_error.
  struct CheckedSnapshot {
    std::unique_ptr<ReadTxn> read;
    lmdb::StructureReport structure;
  };
  CheckedSnapshot check_structure(std::size_t max_problems) const;
  // The first problem of a damaged structure, in words: "page N (db): what".
  static std::string describe(const lmdb::StructureReport& damaged);

  // LMDB's compacting copy of one snapshot into the directory `target`,
  // under the map lock shared.
  void copy_compacted(const std::filesystem::path& target) const;

  // The failure state: set once by the first I/O error or MDB_PANIC of a
  // write; from then on every write is refused until the store is reopened.
  void record_failure(const std::string& reason);
  std::string failure() const;
  // The error every write gets once the store failed; nothing while healthy.
  std::optional<Error> failed_error() const;

 private:
  void check_meta_pages() const;
  void check_structure_on_open(bool read_only) const;
  void check_file_size();
  // Tells the fault handler (lighthouse/faults.h) where the map is now.
  void note_map() const;

  const std::filesystem::path path_;
  const std::size_t max_map_size_;
  lmdb::Env env_;

  mutable std::shared_mutex lifecycle_;
  // Written under lifecycle_; atomic so that cursors can check it per event
  // without taking the lock.
  std::atomic<bool> closed_{false};

  // Held shared by every transaction of this process, exclusively while the
  // map is resized (LMDB requires that no transaction is active then).
  mutable std::shared_mutex map_lock_;

  mutable std::mutex failure_mutex_;
  std::string failure_;  // why the store refuses writes, once it does

  int region_ = -1;  // this map's slot in map_regions
};

}  // namespace lighthouse
