// Store::Impl — one open LMDB environment, shared by every Store handle of
// this process that opened the same path.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "lighthouse/store.h"
#include "lmdb/lmdb.h"

namespace lighthouse {

struct Databases {
  MDB_dbi events = 0;
  MDB_dbi by_type = 0;
  MDB_dbi by_aggregate = 0;
  MDB_dbi aggregate_heads = 0;
  MDB_dbi by_idempotency_key = 0;
  MDB_dbi meta = 0;
};

// The state the write path derives inside each write transaction.
struct WriteState {
  std::uint64_t last_sequence = 0;
  std::uint64_t last_timestamp_ns = 0;
  Sha256 last_chain{};
};

class Store::Impl {
 public:
  // Opens the store at `path` or returns the one this process already has
  // open (the per-process registry).
  static std::shared_ptr<Impl> open(const std::filesystem::path& path, const Options& options);

  Impl(std::filesystem::path canonical_path, const Options& options);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Closes the environment and leaves the registry; later calls raise
  // Error(closed).
  void shutdown() noexcept;

  std::vector<AppendResult> append(const std::vector<Batch>& batches, bool allow_reserved);
  RecordedEvent get(const EventId& id) const;
  StoreStats stats() const;

  const std::filesystem::path& path() const noexcept { return path_; }
  const Options& options() const noexcept { return options_; }
  bool env_read_only() const noexcept { return options_.read_only; }

 private:
  // Held shared by every operation, exclusively by shutdown().
  std::shared_lock<std::shared_mutex> use() const;
  void open_databases();
  void check_invariants(MDB_txn* txn);
  std::uint64_t now_ns() const;

  std::filesystem::path path_;
  Options options_;
  lmdb::Env env_;
  Databases dbs_;
  std::uint32_t node_id_ = 0;
  std::uint32_t format_version_ = 0;

  mutable std::shared_mutex lifecycle_;
  bool closed_ = false;
  std::mutex writer_;
};

}  // namespace lighthouse
