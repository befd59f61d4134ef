#include "store/environment.h"

#include "files.h"
#include "lmdb/file_check.h"
#include "lmdb/page_format.h"
#include "store/damage_mark.h"
#include "store/map_regions.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <thread>
#include <system_error>

namespace lighthouse {
namespace fs = std::filesystem;
namespace {

constexpr unsigned kMaxDbs = 8;
constexpr unsigned kMaxReaders = 256;

}  // namespace

Environment::Environment(fs::path path, const Options& options)
    : path_(std::move(path)), max_map_size_(options.max_map_size) {
  MDB_env* env = env_.get();
  lmdb::check(mdb_env_set_maxdbs(env, kMaxDbs), "mdb_env_set_maxdbs");
  lmdb::check(mdb_env_set_maxreaders(env, kMaxReaders), "mdb_env_set_maxreaders");
  mdb_env_set_assert(env, map_regions::on_lmdb_assert);  // (a no-op in an LMDB built without assertions)
  std::size_t map_size = options.map_size;
  if (options.max_map_size != 0) map_size = std::min(map_size, options.max_map_size);
  lmdb::check(mdb_env_set_mapsize(env, map_size), "mdb_env_set_mapsize");
  // LMDB takes a zero-length data file for a new environment and would
  // silently start an empty store over a truncated one.
  std::error_code size_ec;
  if (fs::exists(path_ / "data.mdb", size_ec) && fs::file_size(path_ / "data.mdb", size_ec) == 0 && !size_ec) {
    throw Error(ErrorCode::corruption, "store '" + path_.string() +
                                           "': data.mdb is empty (truncated); restore it from a backup or an archive");
  }
  check_meta_pages();
  unsigned flags = MDB_NOTLS;
  if (options.read_only) flags |= MDB_RDONLY;
  if (options.durability == Durability::no_meta_sync) flags |= MDB_NOMETASYNC;
  int rc = mdb_env_open(env, path_.c_str(), flags, static_cast<mdb_mode_t>(options.file_mode & 0777u));
  if (rc != MDB_SUCCESS) {
    std::string what = "cannot open store '" + path_.string() + "'";
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
      throw Error(ErrorCode::corruption, what + ": not an LMDB environment (" + mdb_strerror(rc) + ")");
    }
    lmdb::raise(rc, what);
  }
  check_file_size();
  int dead = 0;
  mdb_reader_check(env, &dead);  // frees slots of crashed readers
  region_ = map_regions::add(path_.string());
  map_regions::attach(region_, env);
  note_map();
  if (options.check_structure_on_open) check_structure_on_open(options.read_only);
}

void Environment::note_map() const {
  // Only a process with the store fault handler needs to know where the map
  // is (install_store_fault_handler locates the stores already open).
  if (region_ < 0 || !map_regions::handler_active()) return;
  const void* address = nullptr;
  std::size_t size = 0;
  if (map_regions::find_map_of((path_ / "data.mdb").string(), address, size)) {
    map_regions::update(region_, address, size);
  } else {
    map_regions::update(region_, nullptr, 0);
  }
}

Environment::~Environment() {
  close();
  map_regions::release(region_);
}

namespace {

[[noreturn]] void refuse_damaged(const fs::path& store, const std::string& what) {
  throw Error(ErrorCode::corruption, "store '" + store.string() + "': " + what +
                                         " (run `lighthouse verify`; restore it from a backup, or copy out what can be "
                                         "read with `lighthouse salvage`)");
}

}  // namespace

// Before LMDB reads anything of the file: its two meta pages, which LMDB
// trusts (a damaged one would surface as ENOMEM or MDB_MAP_RESIZED). A
// writer of another process may be writing one meanwhile: a problem counts
// only when the pages read the same twice, and on three such reads.
void Environment::check_meta_pages() const {
  const fs::path data = path_ / "data.mdb";
  std::error_code ec;
  if (!fs::exists(data, ec) || fs::file_size(data, ec) == 0) return;  // a new store (or refused above)
  lmdb::MetaCheck metas;
  int judged = 0;
  for (int attempt = 0; judged < 3 && attempt < 50; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::array<std::string, 2> raw;
    try {
      const lmdb::FdSource source(data);
      metas = lmdb::check_meta_pages(source, &raw);
      if (metas.ok()) return;
      if (!lmdb::meta_pages_unchanged(source, raw)) continue;  // a commit was writing one
    } catch (const Error& e) {
      throw Error(e.code(), "cannot open store '" + path_.string() + "': " + e.what());
    }
    ++judged;
  }
  if (judged == 0) {
    throw Error(ErrorCode::io_error, "cannot open store '" + path_.string() +
                                         "': its meta pages changed on each of 50 reads (a writer is committing)");
  }
  const auto& p = metas.problems.front();
  refuse_damaged(path_, "its meta page" +
                            (p.page == lmdb::kNoPage ? std::string("s are") : " " + std::to_string(p.page) + " is") +
                            " damaged: " + p.detail);
}

// Options::check_structure_on_open: every page, before the store opens its
// databases (the first reads through LMDB).
void Environment::check_structure_on_open(bool read_only) const {
  const CheckedSnapshot checked = check_structure(1);
  if (checked.structure.ok()) return;
  const std::string what = "the file's structure is damaged: " + describe(checked.structure);
  if (!read_only) damage_mark::set(path_, "an open found " + what);
  refuse_damaged(path_, what);
}

Environment::CheckedSnapshot Environment::check_structure(std::size_t max_problems) const {
  const fs::path data = path_ / "data.mdb";
  // The meta page of a snapshot is rewritten two commits later.
  for (int attempt = 0;; ++attempt) {
    CheckedSnapshot checked;
    checked.read = begin_read();
    checked.structure = lmdb::walk_structure(data, {mdb_txn_id(checked.read->get()), max_problems});
    if (!checked.structure.snapshot_gone) return checked;
    if (attempt == 20) {
      throw Error(ErrorCode::io_error, "store '" + path_.string() +
                                           "': the structural check could not keep up with the writers (20 snapshots "
                                           "were rewritten before their meta page was read)");
    }
  }
}

std::string Environment::describe(const lmdb::StructureReport& damaged) {
  if (damaged.problems.empty()) return "more problems than reported";
  const auto& p = damaged.problems.front();
  std::string where = p.page == lmdb::kNoPage ? "data.mdb" : "page " + std::to_string(p.page);
  if (!p.database.empty()) where += " (" + p.database + ")";
  return where + ": " + p.detail;
}

// A data file shorter than its last used page would crash the process with
// SIGBUS on the first read of a page past its end: refuse it instead.
void Environment::check_file_size() {
  MDB_envinfo info;
  lmdb::check(mdb_env_info(env_.get(), &info), "mdb_env_info");
  MDB_stat st;
  lmdb::check(mdb_env_stat(env_.get(), &st), "mdb_env_stat");
  const std::uint64_t needed = (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * st.ms_psize;
  std::error_code ec;
  const std::uint64_t size = fs::file_size(path_ / "data.mdb", ec);
  if (ec) throw Error(ErrorCode::io_error, "cannot stat '" + (path_ / "data.mdb").string() + "': " + ec.message());
  if (size < needed) {
    throw Error(ErrorCode::corruption, "store '" + path_.string() + "': data.mdb is " + std::to_string(size) +
                                           " bytes but its last used page ends at byte " + std::to_string(needed) +
                                           " (the file was truncated); restore it from a backup or an archive");
  }
}

std::shared_lock<std::shared_mutex> Environment::use() const {
  std::shared_lock lock(lifecycle_);
  if (closed()) throw Error(ErrorCode::closed, "store '" + path_.string() + "' is closed");
  return lock;
}

void Environment::close() noexcept {
  std::unique_lock lock(lifecycle_);
  if (closed()) return;
  closed_.store(true, std::memory_order_release);
  map_regions::update(region_, nullptr, 0);
  env_.close();
}

std::unique_ptr<Environment::ReadTxn> Environment::begin_read() const {
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

std::unique_ptr<Environment::WriteHandle> Environment::begin_write() {
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

void Environment::with_write_txn(const std::function<void(MDB_txn*)>& body) {
  for (int attempt = 0;; ++attempt) {
    try {
      auto txn = begin_write();
      body(txn->get());  // closes its cursors before returning
      txn->commit();
      return;
    } catch (const lmdb::LmdbError& error) {
      if (error.rc() != MDB_MAP_FULL || attempt >= 16) throw;
      grow_map();
    }
  }
}

void Environment::adopt_map_size() const {
  std::unique_lock map(map_lock_);
  lmdb::check(mdb_env_set_mapsize(env_.get(), 0), "adopting the map size of another process");
  note_map();
}

void Environment::grow_map() {
  std::unique_lock map(map_lock_);
  MDB_envinfo info;
  lmdb::check(mdb_env_info(env_.get(), &info), "mdb_env_info");
  std::size_t size = info.me_mapsize * 2;
  if (max_map_size_ != 0) {
    if (info.me_mapsize >= max_map_size_) {
      throw Error(ErrorCode::limit_exceeded, "store '" + path_.string() +
                                                 "' is full: its map reached Options::max_map_size (" +
                                                 std::to_string(max_map_size_) + " bytes)");
    }
    size = std::min(size, max_map_size_);
  }
  lmdb::check(mdb_env_set_mapsize(env_.get(), size), "growing the map");
  note_map();
}

std::uint64_t Environment::map_used_bytes() const {
  MDB_envinfo info;
  lmdb::check(mdb_env_info(env_.get(), &info), "mdb_env_info");
  MDB_stat st;
  lmdb::check(mdb_env_stat(env_.get(), &st), "mdb_env_stat");
  return (info.me_last_pgno + 1) * static_cast<std::uint64_t>(st.ms_psize);
}

std::uint64_t Environment::map_size_bytes() const {
  MDB_envinfo info;
  lmdb::check(mdb_env_info(env_.get(), &info), "mdb_env_info");
  return info.me_mapsize;
}

unsigned Environment::readers_in_use() const {
  MDB_envinfo info;
  if (mdb_env_info(env_.get(), &info) != MDB_SUCCESS) return 0;
  return info.me_numreaders;
}

void Environment::copy_compacted(const fs::path& target) const {
  // mdb_env_copy2 runs its own read transaction: the map lock is held shared
  // so that this process does not resize the map meanwhile.
  std::shared_lock map(map_lock_);
  const lmdb::InLmdb inside(env_.get());
  const int rc = mdb_env_copy2(env_.get(), target.c_str(), MDB_CP_COMPACT);
  if (rc > 0) {
    throw Error(ErrorCode::io_error,
                "copying the store to '" + target.string() + "': " + write_failure(rc, target, path_ / "data.mdb"));
  }
  lmdb::check(rc, "copying the store to '" + target.string() + "'");
}

void Environment::record_failure(const std::string& reason) {
  std::lock_guard lock(failure_mutex_);
  if (failure_.empty()) failure_ = reason;
}

std::string Environment::failure() const {
  std::lock_guard lock(failure_mutex_);
  return failure_;
}

std::optional<Error> Environment::failed_error() const {
  std::string reason = failure();
  if (reason.empty()) return std::nullopt;
  return Error(ErrorCode::store_failed,
               "store '" + path_.string() + "' refuses writes after: " + reason + "; close and reopen it");
}

}  // namespace lighthouse
