#include "store/store_impl.h"

#include <sys/stat.h>

#include <chrono>
#include <random>
#include <system_error>

#include "codec/record.h"
#include "file_modes.h"
#include "store/validation.h"
#include "lighthouse/version.h"
#include "store/registry.h"
#include "store/schema.h"

namespace lighthouse {
namespace fs = std::filesystem;
namespace {

constexpr unsigned kMaxDbs = 8;
constexpr unsigned kMaxReaders = 256;

std::uint32_t random_node_id() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint32_t> dist(1, 0xffffffffu);
  return dist(rd);
}

std::uint64_t meta_u64(MDB_txn* txn, MDB_dbi meta, std::string_view key, std::size_t width,
                       std::uint64_t missing) {
  std::string_view value;
  if (!lmdb::get(txn, meta, key, value)) return missing;
  if (value.size() != width) {
    throw Error(ErrorCode::corruption, "meta '" + std::string(key) + "' has " +
                                           std::to_string(value.size()) + " bytes, expected " +
                                           std::to_string(width));
  }
  return schema::read_be(value, width);
}

}  // namespace

std::shared_ptr<Store::Impl> Store::Impl::open(const fs::path& path, const Options& options) {
  if (path.empty()) throw Error(ErrorCode::invalid_argument, "store path is empty");
  validation::check_options(options);
  std::error_code ec;
  if (fs::exists(path, ec) && !fs::is_directory(path, ec)) {
    throw Error(ErrorCode::invalid_argument,
                "store path '" + path.string() + "' is not a directory");
  }
  // LMDB would follow a link out of the store directory: a store's files
  // must be its own.
  for (const char* name : {"data.mdb", "lock.mdb"}) {
    if (fs::is_symlink(fs::symlink_status(path / name, ec))) {
      throw Error(ErrorCode::invalid_argument, "store '" + path.string() + "': " + name +
                                                   " is a symbolic link; Lighthouse does not follow links "
                                                   "out of a store directory");
    }
  }
  ec.clear();
  bool exists = fs::exists(path / "data.mdb", ec);
  if (ec) {
    // A directory we may not enter is not "no store".
    throw Error(ErrorCode::io_error, "cannot open store '" + path.string() + "': " + ec.message());
  }
  if (!exists) {
    if (options.read_only || !options.create_if_missing) {
      throw Error(ErrorCode::not_found, "no store at '" + path.string() + "'");
    }
    create_directory_for(path, options.file_mode, ec);
    if (ec) {
      throw Error(ErrorCode::io_error,
                  "cannot create store directory '" + path.string() + "': " + ec.message());
    }
  }
  fs::path canonical = fs::canonical(path, ec);
  if (ec) {
    throw Error(ErrorCode::io_error, "cannot resolve '" + path.string() + "': " + ec.message());
  }
  auto impl = registry::acquire(canonical, [&] { return std::make_shared<Impl>(canonical, options); });
  if (impl->env_read_only() && !options.read_only) {
    throw Error(ErrorCode::already_open,
                "store '" + canonical.string() +
                    "' is already open read-only in this process; close it to open it for writing");
  }
  return impl;
}

Store::Impl::Impl(fs::path canonical_path, const Options& options)
    : path_(std::move(canonical_path)), options_(options) {
  MDB_env* env = env_.get();
  lmdb::check(mdb_env_set_maxdbs(env, kMaxDbs), "mdb_env_set_maxdbs");
  lmdb::check(mdb_env_set_maxreaders(env, kMaxReaders), "mdb_env_set_maxreaders");
  std::size_t map_size = options_.map_size;
  if (options_.max_map_size != 0) map_size = std::min(map_size, options_.max_map_size);
  lmdb::check(mdb_env_set_mapsize(env, map_size), "mdb_env_set_mapsize");
  // LMDB takes a zero-length data file for a new environment and would
  // silently start an empty store over a truncated one.
  std::error_code size_ec;
  if (fs::exists(path_ / "data.mdb", size_ec) && fs::file_size(path_ / "data.mdb", size_ec) == 0 &&
      !size_ec) {
    throw Error(ErrorCode::corruption, "store '" + path_.string() +
                                           "': data.mdb is empty (truncated); restore it from a "
                                           "backup or an archive");
  }
  unsigned flags = MDB_NOTLS;
  if (options_.read_only) flags |= MDB_RDONLY;
  if (options_.durability == Durability::no_meta_sync) flags |= MDB_NOMETASYNC;
  int rc = mdb_env_open(env, path_.c_str(), flags, static_cast<mdb_mode_t>(options_.file_mode & 0777u));
  if (rc != MDB_SUCCESS) {
    std::string what = "cannot open store '" + path_.string() + "'";
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
      throw Error(ErrorCode::corruption, what + ": not an LMDB environment (" +
                                             mdb_strerror(rc) + ")");
    }
    lmdb::raise(rc, what);
  }
  check_file_size();
  int dead = 0;
  mdb_reader_check(env, &dead);  // frees slots of crashed readers
  open_databases();
  if (options_.monitor) {
    monitor::SlaMonitor::NowNs now = options_.monotonic_clock;
    if (!now) {
      now = [] {
        return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              std::chrono::steady_clock::now().time_since_epoch())
                                              .count());
      };
    }
    monitor_ = std::make_unique<monitor::SlaMonitor>(options_.sla, std::move(now));
  }
  if (!options_.read_only) {
    Committer::ObserveBacklog observe;
    if (monitor_) {
      observe = [this](std::size_t queued, std::uint64_t oldest) { monitor_->sample_backlog(queued, oldest); };
    }
    const auto window = std::chrono::nanoseconds(
        static_cast<std::int64_t>(options_.health.enabled ? std::max(0.0, options_.health.window_seconds) * 1e9 : 0.0));
    start_health();
    committer_ = std::make_unique<Committer>(
        CommitterLimits{options_.max_group_events, options_.max_group_bytes},
        [this](std::vector<std::unique_ptr<AppendRequest>>& group) { commit_group(group); }, std::move(observe),
        [this] { health_tick(); }, window);
    // A store opened degraded bounds its groups from the first one.
    committer_->bound_group_events(group_bound(static_cast<HealthState>(health_cache_.load())));
  } else {
    start_health();
  }
}

Store::Impl::~Impl() { shutdown(); }

void Store::Impl::shutdown() noexcept {
  // Subscriptions end first — outside the registry's lock, since their
  // handlers may open or close stores: none reads past this point.
  stop_subscriptions();
  registry::release(path_, this, [this] {
    // Queued appends are committed (or failed) before the environment closes.
    if (committer_) committer_->stop();
    // The monitor's last report, for other processes (best effort: a store
    // that failed or cannot write keeps the previous one).
    // Only a process that appended: one whose appends all failed, or that
    // only recorded a health transition, leaves the previous report.
    if (committer_ && monitor_ && !closed_ && failure().empty() &&
        appended_.load(std::memory_order_relaxed)) {
      try {
        auto txn = begin_write();
        persist_sla(txn->get());
        txn->commit();
      } catch (const std::exception&) {
      }
    }
    std::unique_lock lock(lifecycle_);
    if (closed_) return;
    closed_ = true;
    env_.close();
  });
}

std::shared_lock<std::shared_mutex> Store::Impl::use() const {
  std::shared_lock lock(lifecycle_);
  if (closed_) throw Error(ErrorCode::closed, "store '" + path_.string() + "' is closed");
  return lock;
}

void Store::Impl::open_databases() {
  const bool ro = options_.read_only;
  lmdb::Txn txn(env_.get(), ro);
  auto open_db = [&](const char* name, unsigned flags) {
    MDB_dbi dbi;
    int rc = mdb_dbi_open(txn.get(), name, flags | (ro ? 0u : unsigned{MDB_CREATE}), &dbi);
    if (rc == MDB_NOTFOUND) {
      throw Error(ErrorCode::corruption, "store '" + path_.string() + "' has no '" + name +
                                             "' database: not a Lighthouse store");
    }
    lmdb::check(rc, std::string("opening database '") + name + "'");
    return dbi;
  };
  dbs_.meta = open_db(schema::kMeta, 0);
  std::string_view version;
  bool is_new = !lmdb::get(txn.get(), dbs_.meta, schema::meta::kFormatVersion, version);
  if (is_new && ro) {
    throw Error(ErrorCode::not_found, "no Lighthouse store at '" + path_.string() + "'");
  }
  if (is_new) {
    // A new store starts from an empty environment: one that holds anything
    // but Lighthouse's own databases belongs to someone else, and is left
    // untouched (this transaction aborts).
    MDB_dbi main_db;
    lmdb::check(mdb_dbi_open(txn.get(), nullptr, 0, &main_db), "opening the main database");
    lmdb::Cursor names(txn.get(), main_db);
    MDB_val k, v;
    for (bool ok = names.seek(k, v, MDB_FIRST); ok; ok = names.seek(k, v, MDB_NEXT)) {
      const std::string_view name = lmdb::view(k);
      const bool ours = name == schema::kMeta || name == schema::kEvents || name == schema::kByType ||
                        name == schema::kByAggregate || name == schema::kAggregateHeads ||
                        name == schema::kByIdempotencyKey;
      if (!ours) {
        throw Error(ErrorCode::corruption, "'" + path_.string() +
                                               "' holds an LMDB environment that is not a Lighthouse "
                                               "store (it has data outside Lighthouse's databases)");
      }
    }
  }
  if (!is_new) {
    format_version_ = static_cast<std::uint32_t>(
        meta_u64(txn.get(), dbs_.meta, schema::meta::kFormatVersion, 4, 0));
    if (format_version_ > kFormatVersion) {
      throw Error(ErrorCode::unsupported_format,
                  "store '" + path_.string() + "' has format version " +
                      std::to_string(format_version_) + "; this Lighthouse reads up to " +
                      std::to_string(kFormatVersion));
    }
  }
  dbs_.events = open_db(schema::kEvents, 0);
  dbs_.by_type = open_db(schema::kByType, MDB_DUPSORT | MDB_DUPFIXED);
  dbs_.by_aggregate = open_db(schema::kByAggregate, MDB_DUPSORT | MDB_DUPFIXED);
  dbs_.aggregate_heads = open_db(schema::kAggregateHeads, 0);
  dbs_.by_idempotency_key = open_db(schema::kByIdempotencyKey, 0);
  if (is_new && lmdb::entries(txn.get(), dbs_.events) != 0) {
    throw Error(ErrorCode::corruption, "store '" + path_.string() +
                                           "' holds events but no format version in 'meta' (run "
                                           "`lighthouse verify`; restore it from a backup)");
  }
  if (is_new) {
    format_version_ = kFormatVersion;
    node_id_ = options_.node_id.value_or(random_node_id());
    lmdb::put(txn.get(), dbs_.meta, schema::meta::kFormatVersion, schema::be32(kFormatVersion));
    lmdb::put(txn.get(), dbs_.meta, schema::meta::kNodeId, schema::be32(node_id_));
    lmdb::put(txn.get(), dbs_.meta, schema::meta::kCreatedNs, schema::be64(now_ns()));
  } else {
    auto stored = meta_u64(txn.get(), dbs_.meta, schema::meta::kNodeId, 4, 0);
    node_id_ = options_.node_id.value_or(static_cast<std::uint32_t>(stored));
  }
  std::string_view importing;
  if (options_.check_on_open &&
      lmdb::get(txn.get(), dbs_.meta, schema::meta::kImportInProgress, importing)) {
    throw Error(ErrorCode::corruption,
                "store '" + path_.string() +
                    "' holds an import that was interrupted: remove the store and import again");
  }
  if (options_.check_on_open) check_invariants(txn.get());
  txn.commit();
}

// A data file shorter than its last used page would crash the process with
// SIGBUS on the first read of a page past its end: refuse it instead.
void Store::Impl::check_file_size() {
  MDB_envinfo info;
  lmdb::check(mdb_env_info(env_.get(), &info), "mdb_env_info");
  MDB_stat st;
  lmdb::check(mdb_env_stat(env_.get(), &st), "mdb_env_stat");
  const std::uint64_t needed = (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * st.ms_psize;
  std::error_code ec;
  const std::uint64_t size = fs::file_size(path_ / "data.mdb", ec);
  if (ec) {
    throw Error(ErrorCode::io_error, "cannot stat '" + (path_ / "data.mdb").string() + "': " + ec.message());
  }
  if (size < needed) {
    throw Error(ErrorCode::corruption,
                "store '" + path_.string() + "': data.mdb is " + std::to_string(size) +
                    " bytes but its last used page ends at byte " + std::to_string(needed) +
                    " (the file was truncated); restore it from a backup or an archive");
  }
}

// O(1) checks that the counters in `meta` agree with the ends of `events`.
void Store::Impl::check_invariants(MDB_txn* txn) {
  auto broken = [&](const std::string& what) {
    throw Error(ErrorCode::corruption, "store '" + path_.string() + "': " + what +
                                           " (run `lighthouse verify` for a full report)");
  };
  std::uint64_t last_sequence = meta_u64(txn, dbs_.meta, schema::meta::kLastSequence, 8, 0);
  std::uint64_t last_ts = meta_u64(txn, dbs_.meta, schema::meta::kLastTimestamp, 8, 0);
  std::string_view chain;
  bool has_chain = lmdb::get(txn, dbs_.meta, schema::meta::kLastChain, chain);
  if (has_chain && chain.size() != 32) broken("meta 'last_chain' is not 32 bytes");

  const std::uint64_t base = meta_u64(txn, dbs_.meta, schema::meta::kBaseSequence, 8, 1);
  lmdb::Cursor cursor(txn, dbs_.events);
  MDB_val key, value;
  if (!cursor.seek(key, value, MDB_LAST)) {
    if (last_sequence + 1 != base) {
      broken("meta says the last sequence is " + std::to_string(last_sequence) +
             " but the store holds no events after its base " + std::to_string(base));
    }
    return;
  }
  EventId last = EventId::from_key(lmdb::view(key));
  if (last.sequence != last_sequence || last.timestamp_ns != last_ts) {
    broken("meta says the last event is sequence " + std::to_string(last_sequence) + " at " +
           std::to_string(last_ts) + " ns, but the last stored event is " + last.to_string());
  }
  RecordedEvent event = codec::decode_record(last, lmdb::view(value));
  if (!has_chain || std::string_view(reinterpret_cast<const char*>(event.chain.data()), 32) != chain) {
    broken("meta 'last_chain' differs from the chain of the last event " + last.to_string());
  }
  MDB_val first_key, first_value;
  cursor.seek(first_key, first_value, MDB_FIRST);
  EventId first = EventId::from_key(lmdb::view(first_key));
  std::uint64_t count = lmdb::entries(txn, dbs_.events);
  if (first.sequence != base) {
    broken("the first event has sequence " + std::to_string(first.sequence) + " but the base is " +
           std::to_string(base));
  }
  if (last.sequence - first.sequence + 1 != count) {
    broken("sequences " + std::to_string(first.sequence) + ".." + std::to_string(last.sequence) +
           " but " + std::to_string(count) + " events are stored (a gap)");
  }
}

std::uint64_t Store::Impl::now_ns() const {
  if (options_.clock) return options_.clock();
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::unique_ptr<Store::Impl::ReadTxn> Store::Impl::begin_read() const {
  bool cleared_readers = false;
  for (;;) {
    std::shared_lock map(map_lock_);
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_.get(), nullptr, MDB_RDONLY, &txn);
    if (rc == MDB_MAP_RESIZED) {
      map.unlock();
      adopt_map_size();
      continue;
    }
    if (rc == MDB_READERS_FULL && !cleared_readers) {
      // Slots of crashed processes may be holding the table: free them once.
      int dead = 0;
      mdb_reader_check(env_.get(), &dead);
      cleared_readers = true;
      continue;
    }
    lmdb::check(rc, "beginning a read transaction");
    return std::unique_ptr<ReadTxn>(new ReadTxn{std::move(map), lmdb::Txn(txn)});
  }
}

std::unique_ptr<Store::Impl::WriteHandle> Store::Impl::begin_write() {
  for (;;) {
    MDB_txn* txn = nullptr;
    std::shared_lock map(map_lock_);
    int rc = mdb_txn_begin(env_.get(), nullptr, 0, &txn);
    if (rc == MDB_MAP_RESIZED) {
      map.unlock();
      adopt_map_size();
      continue;
    }
    lmdb::check(rc, "beginning a write transaction");
    return std::make_unique<WriteHandle>(std::move(map), txn);
  }
}

void Store::Impl::adopt_map_size() const {
  std::unique_lock map(map_lock_);
  lmdb::check(mdb_env_set_mapsize(env_.get(), 0), "adopting the map size of another process");
}

void Store::Impl::grow_map() {
  std::unique_lock map(map_lock_);
  MDB_envinfo info;
  lmdb::check(mdb_env_info(env_.get(), &info), "mdb_env_info");
  std::size_t size = info.me_mapsize * 2;
  if (options_.max_map_size != 0) {
    if (info.me_mapsize >= options_.max_map_size) {
      throw Error(ErrorCode::limit_exceeded,
                  "store '" + path_.string() + "' is full: its map reached Options::max_map_size (" +
                      std::to_string(options_.max_map_size) + " bytes)");
    }
    size = std::min(size, options_.max_map_size);
  }
  lmdb::check(mdb_env_set_mapsize(env_.get(), size), "growing the map");
}

std::uint64_t Store::Impl::map_used_bytes() const {
  MDB_envinfo info;
  lmdb::check(mdb_env_info(env_.get(), &info), "mdb_env_info");
  MDB_stat st;
  lmdb::check(mdb_env_stat(env_.get(), &st), "mdb_env_stat");
  return (info.me_last_pgno + 1) * static_cast<std::uint64_t>(st.ms_psize);
}

void Store::Impl::record_failure(const std::string& reason) {
  std::lock_guard lock(failure_mutex_);
  if (failure_.empty()) failure_ = reason;
}

std::string Store::Impl::failure() const {
  std::lock_guard lock(failure_mutex_);
  return failure_;
}

void Store::Impl::refuse_read_only(bool handle_read_only) const {
  if (handle_read_only || options_.read_only) {
    throw Error(ErrorCode::read_only, "store '" + path_.string() + "' is open read-only");
  }
}

std::optional<Error> Store::Impl::failed_error() const {
  std::string reason = failure();
  if (reason.empty()) return std::nullopt;
  return Error(ErrorCode::store_failed,
               "store '" + path_.string() + "' refuses writes after: " + reason + "; close and reopen it");
}

RecordedEvent Store::Impl::get(const EventId& id) const {
  auto lock = use();
  auto read = begin_read();
  MDB_txn* txn = read->txn.get();
  auto key = id.to_key();
  std::string_view value;
  if (!lmdb::get(txn, dbs_.events,
                 std::string_view(reinterpret_cast<const char*>(key.data()), key.size()), value)) {
    throw Error(ErrorCode::not_found, "no event " + id.to_string());
  }
  try {
    std::string_view stored_tail;
    RecordedEvent event = codec::decode_record(id, value, &stored_tail);
    if (options_.verify_checksums) codec::verify_checksum(event, stored_tail);
    return event;
  } catch (const Error& error) {
    if (error.code() == ErrorCode::corruption) note_corruption(error.what());
    throw;
  }
}

StoreStats Store::Impl::stats() const {
  auto lock = use();
  auto read = begin_read();
  MDB_txn* txn = read->txn.get();
  StoreStats s;
  s.event_count = lmdb::entries(txn, dbs_.events);
  s.last_sequence = meta_u64(txn, dbs_.meta, schema::meta::kLastSequence, 8, 0);
  s.last_timestamp_ns = meta_u64(txn, dbs_.meta, schema::meta::kLastTimestamp, 8, 0);
  s.aggregate_count = meta_u64(txn, dbs_.meta, schema::meta::kAggregateCount, 8, 0);
  {
    // Distinct types: one step per type (stores hold few types).
    lmdb::Cursor cursor(txn, dbs_.by_type);
    MDB_val k, v;
    for (bool ok = cursor.seek(k, v, MDB_FIRST); ok; ok = cursor.seek(k, v, MDB_NEXT_NODUP)) {
      ++s.type_count;
    }
  }
  s.node_id = node_id_;
  s.format_version = format_version_;
  MDB_envinfo info;
  lmdb::check(mdb_env_info(env_.get(), &info), "mdb_env_info");
  MDB_stat st;
  lmdb::check(mdb_env_stat(env_.get(), &st), "mdb_env_stat");
  s.map_size_bytes = info.me_mapsize;
  s.map_used_bytes = (info.me_last_pgno + 1) * static_cast<std::uint64_t>(st.ms_psize);
  s.read_only = options_.read_only;
  s.append_backlog = committer_ ? committer_->backlog() : 0;
  s.commits = commits_.load(std::memory_order_relaxed);
  s.base_sequence = meta_u64(txn, dbs_.meta, schema::meta::kBaseSequence, 8, 1);
  std::string_view archive;
  if (lmdb::get(txn, dbs_.meta, schema::meta::kBaseArchive, archive)) s.base_archive = archive;
  std::string_view base_chain;
  if (lmdb::get(txn, dbs_.meta, schema::meta::kBaseChain, base_chain) && base_chain.size() == 32) {
    Sha256 d;
    std::copy(base_chain.begin(), base_chain.end(), reinterpret_cast<char*>(d.data()));
    s.base_chain = to_hex(d);
  }
  s.failure = failure();
  return s;
}

}  // namespace lighthouse
