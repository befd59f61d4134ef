// verify(), repair() and backup() of Store.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>

#include "codec/record.h"
#include "store/schema.h"
#include "file_modes.h"
#include "store/store_impl.h"
#include "store/verify.h"

namespace lighthouse {
namespace fs = std::filesystem;
namespace {

void sync_path(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    int err = errno;
    if (fd >= 0) ::close(fd);
    throw Error(ErrorCode::io_error, "cannot sync '" + path.string() + "': " + std::strerror(err));
  }
  ::close(fd);
}

}  // namespace

VerifyReport Store::verify(const VerifyOptions& options) const {
  auto lock = impl().use();
  auto read = impl().begin_read();
  VerifyReport report = verify_snapshot(read->txn.get(), impl().dbs_, options);
  // A clean store ends the corruption trigger of the health state.
  if (report.ok()) impl().clear_corruption();
  return report;
}

void Store::Impl::with_write_txn(const std::function<void(MDB_txn*)>& body) {
  for (int attempt = 0;; ++attempt) {
    try {
      auto txn = begin_write();
      body(txn->get());  // closes its cursors before returning
      txn->commit();
      notify_subscribers();  // health events and imports are events too
      return;
    } catch (const lmdb::LmdbError& error) {
      if (error.rc() != MDB_MAP_FULL || attempt >= 16) throw;
      grow_map();
    }
  }
}

void Store::Impl::rebuild_indexes(RepairReport& report) {
  with_write_txn([&](MDB_txn* t) {
    // Keys of truncated events cannot be rebuilt from events: keep them.
    std::vector<std::pair<std::string, std::string>> dropped_keys;
    {
      lmdb::Cursor keys(t, dbs_.by_idempotency_key);
      MDB_val dk, dv;
      for (bool ok = keys.seek(dk, dv, MDB_FIRST); ok; ok = keys.seek(dk, dv, MDB_NEXT)) {
        if (dv.mv_size == schema::kDroppedIdempotencyEntrySize) {
          dropped_keys.emplace_back(lmdb::view(dk), lmdb::view(dv));
        }
      }
    }
    for (MDB_dbi dbi : {dbs_.by_type, dbs_.by_aggregate, dbs_.by_idempotency_key}) {
      lmdb::check(mdb_drop(t, dbi, 0), "emptying an index");
    }
    for (const auto& [key, value] : dropped_keys) lmdb::put(t, dbs_.by_idempotency_key, key, value);
    report.events_indexed = 0;
    report.left_for_operator.clear();
    std::map<std::string, std::uint64_t> heads;
    std::optional<RecordedEvent> last;  // the last event that decodes
    std::optional<EventId> last_id;      // the last event key
    MDB_val k, v;
    // Cursors of a write transaction must be closed before it commits.
    auto cursor_holder = std::make_unique<lmdb::Cursor>(t, dbs_.events);
    lmdb::Cursor& cursor = *cursor_holder;
    for (bool ok = cursor.seek(k, v, MDB_FIRST); ok; ok = cursor.seek(k, v, MDB_NEXT)) {
      std::string key(lmdb::view(k));
      if (key.size() != EventId::kKeySize) {
        report.left_for_operator.push_back(
            {"record", "key of " + std::to_string(key.size()) + " bytes", "not an event key"});
        continue;
      }
      EventId id = EventId::from_key(key);
      last_id = id;
      RecordedEvent e;
      try {
        e = codec::decode_record(id, lmdb::view(v));
      } catch (const Error& error) {
        report.left_for_operator.push_back({"record", id.to_string(), error.what()});
        continue;
      }
      if (codec::event_checksum(e) != e.checksum) {
        report.left_for_operator.push_back(
            {"checksum", id.to_string(), "content does not match its checksum; indexed as stored"});
      }
      lmdb::put(t, dbs_.by_type, e.type, key);
      if (!e.aggregate.empty()) {
        lmdb::put(t, dbs_.by_aggregate, e.aggregate, schema::be64(e.aggregate_version) + key);
        auto& head = heads[e.aggregate];
        head = std::max(head, e.aggregate_version);
      }
      if (e.idempotency_key) {
        Sha256 hash = codec::content_hash(codec::RecordFields::of(e));
        lmdb::put(t, dbs_.by_idempotency_key, *e.idempotency_key,
                  key + std::string(reinterpret_cast<const char*>(hash.data()), hash.size()));
      }
      ++report.events_indexed;
      last = std::move(e);
    }
    cursor_holder.reset();
    // aggregate_heads keeps only aggregates without events (all truncated).
    std::uint64_t aggregates = heads.size();
    std::vector<std::string> derived;
    {
      lmdb::Cursor kept(t, dbs_.aggregate_heads);
      for (bool ok = kept.seek(k, v, MDB_FIRST); ok; ok = kept.seek(k, v, MDB_NEXT)) {
        std::string name(lmdb::view(k));
        if (heads.count(name) != 0)
          derived.push_back(std::move(name));
        else
          ++aggregates;
      }
    }
    for (const auto& name : derived) {
      MDB_val dk = lmdb::val(name);
      lmdb::check(mdb_del(t, dbs_.aggregate_heads, &dk, nullptr), "mdb_del");
    }
    if (last_id) {
      // Sequence and timestamp come from the last key, so that appends never
      // reuse them; the chain only when the last record decodes.
      lmdb::put(t, dbs_.meta, schema::meta::kLastSequence, schema::be64(last_id->sequence));
      lmdb::put(t, dbs_.meta, schema::meta::kLastTimestamp, schema::be64(last_id->timestamp_ns));
      if (last && last->id == *last_id) {
        lmdb::put(t, dbs_.meta, schema::meta::kLastChain,
                  std::string_view(reinterpret_cast<const char*>(last->chain.data()), 32));
      }
    }
    lmdb::put(t, dbs_.meta, schema::meta::kAggregateCount, schema::be64(aggregates));
  });
}

RepairReport Store::repair() {
  impl().refuse_read_only(read_only_handle_);
  RepairReport report;
  report.before = verify();
  impl().run_exclusive([&] { impl().rebuild_indexes(report); });
  report.after = verify();
  return report;
}

bool Store::Impl::on_committer_thread() const noexcept {
  return committer_ && committer_->on_committer_thread();
}

void Store::Impl::refuse_on_committer_thread(const char* what) const {
  if (on_committer_thread()) {
    throw Error(ErrorCode::invalid_argument,
                std::string(what) +
                    " cannot be called from a store callback (on_sla_breach, on_health_change): "
                    "they run on the committer thread, which it would wait for; use append_async, "
                    "or hand the work to another thread");
  }
}

void Store::Impl::run_exclusive(std::function<void()> task, bool even_if_failed) {
  refuse_on_committer_thread("this store method");
  if (auto failed = failed_error(); failed && !even_if_failed) throw *failed;
  auto request = std::make_unique<AppendRequest>();
  request->task = std::move(task);
  auto done = request->task_done.emplace().get_future();
  {
    auto lock = use();
    committer_->submit(std::move(request));
  }
  done.get();
}

BackupReport Store::backup(const fs::path& given) const {
  auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  // Checked and created in normal form: "new/.." is the existing parent.
  const fs::path destination = directory_path(fs::absolute(given));
  if (fs::exists(destination, ec) &&
      (!fs::is_directory(destination, ec) || !fs::is_empty(destination, ec))) {
    throw Error(ErrorCode::invalid_argument, "backup destination '" + destination.string() +
                                                 "' exists and is not an empty directory");
  }
  // Neither the store's directory nor anything inside it (checked before
  // anything is created there).
  {
    const fs::path where = fs::weakly_canonical(destination, ec);
    const fs::path& store = impl().path();
    auto [s, w] = std::mismatch(store.begin(), store.end(), where.begin(), where.end());
    if (!ec && s == store.end()) {
      throw Error(ErrorCode::invalid_argument,
                  "backup destination '" + destination.string() + "' is " +
                      (w == where.end() ? "the store itself" : "inside the store's directory"));
    }
  }
  const bool created = create_directory_for(destination, impl().options().file_mode, ec);
  if (ec) {
    throw Error(ErrorCode::io_error,
                "cannot create '" + destination.string() + "': " + ec.message());
  }
  const fs::path target = fs::canonical(destination, ec);
  if (ec) {
    throw Error(ErrorCode::io_error, "cannot resolve '" + destination.string() + "': " + ec.message());
  }
  // A backup that fails leaves nothing behind — and removes nothing it did
  // not make: the directory it created, or the files it wrote into the empty
  // one it was given (LMDB creates data.mdb with O_EXCL, so once the copy
  // succeeded the file is this backup's; lock.mdb is ours if it appeared).
  struct Cleanup {
    fs::path dir;
    bool created;
    bool data_ours = false;
    bool lock_ours = false;
    bool armed = true;
    ~Cleanup() {
      if (!armed) return;
      std::error_code ignored;
      if (created) {
        fs::remove_all(dir, ignored);
        return;
      }
      if (data_ours) fs::remove(dir / "data.mdb", ignored);
      if (lock_ours) fs::remove(dir / "lock.mdb", ignored);
    }
  } cleanup{target, created};
  const bool had_lock = fs::exists(target / "lock.mdb", ec);
  {
    auto lock = impl().use();
    // mdb_env_copy2 runs its own read transaction: hold the map lock shared
    // so that this process does not resize the map meanwhile.
    std::shared_lock map(impl().map_lock_);
    lmdb::check(mdb_env_copy2(impl().env_.get(), target.c_str(), MDB_CP_COMPACT),
                "copying the store to '" + target.string() + "'");
  }
  cleanup.data_ours = true;
  cleanup.lock_ours = !had_lock;
  // LMDB creates the copy with 0666 less the umask: give it the mode of the
  // store's own data file.
  struct stat source {};
  if (::stat((impl().path() / "data.mdb").c_str(), &source) == 0) {
    fs::permissions(target / "data.mdb", static_cast<fs::perms>(source.st_mode & 0777u), ec);
  }
  sync_path(target / "data.mdb", false);
  sync_path(target, true);
  BackupReport report;
  report.path = (target / "data.mdb").string();
  report.bytes = fs::file_size(target / "data.mdb");
  Options options;
  options.read_only = true;
  options.create_if_missing = false;
  {
    Store copy = Store::open(target, options);
    VerifyReport verified = copy.verify({10});
    if (!verified.ok()) {
      throw Error(ErrorCode::corruption,
                  "the backup in '" + target.string() +
                      "' does not verify: " + verified.problems.front().category + " " +
                      verified.problems.front().subject + ": " + verified.problems.front().detail);
    }
    report.events = verified.events_checked;
    copy.close();
  }
  cleanup.armed = false;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace lighthouse
