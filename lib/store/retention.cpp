#include "store/retention.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "codec/record.h"
#include "files.h"
#include "lmdb/file_check.h"
#include "store/damage_mark.h"
#include "store/environment.h"
#include "store/registry.h"

namespace lighthouse {
namespace fs = std::filesystem;
namespace {

// The index entries of a dropped event go with it; an aggregate that lost
// all its events keeps its head, and an idempotency key its event's ID,
// content hash and version, so that a retry still replays.
void drop_index_entries(MDB_txn* t, const Databases& dbs, const std::string& key, const RecordedEvent& e) {
  const lmdb::InLmdb inside(t);
  MDB_val tk = lmdb::val(e.type), tv = lmdb::val(key);
  int rc = mdb_del(t, dbs.by_type, &tk, &tv);
  if (rc != MDB_NOTFOUND) lmdb::check(rc, "deleting a by_type entry");
  if (!e.aggregate.empty()) {
    const std::string entry = schema::encode_aggregate_entry(e.aggregate_version, key);
    MDB_val ak = lmdb::val(e.aggregate), av = lmdb::val(entry);
    rc = mdb_del(t, dbs.by_aggregate, &ak, &av);
    if (rc != MDB_NOTFOUND) lmdb::check(rc, "deleting a by_aggregate entry");
    lmdb::Cursor rest(t, dbs.by_aggregate);
    MDB_val rk = lmdb::val(e.aggregate), rv;
    if (!rest.seek(rk, rv, MDB_SET)) {
      lmdb::put(t, dbs.aggregate_heads, e.aggregate, schema::be64(e.aggregate_version));
    }
  }
  if (e.idempotency_key) {
    const Sha256 hash = codec::content_hash(codec::RecordFields::of(e));
    lmdb::put(t, dbs.by_idempotency_key, *e.idempotency_key,
              schema::encode_dropped_idempotency_entry(key, schema::digest_view(hash), e.aggregate_version));
  }
}

}  // namespace

void drop_events(WritePath& writer, const Databases& dbs, std::uint64_t to_sequence, const std::string& archive) {
  writer.run_exclusive(ExclusiveTask::truncation, [&] {
    writer.write_exclusive([&](MDB_txn* t) {
      Sha256 chain{};
      std::uint64_t last = 0;
      {
        lmdb::Cursor events(t, dbs.events);
        MDB_val k, v;
        while (events.seek(k, v, MDB_FIRST)) {
          const std::string key(lmdb::view(k));
          const EventId id = schema::decode_event_key(key, "an event to drop");
          if (id.sequence > to_sequence) break;
          const RecordedEvent e = codec::decode_record(id, lmdb::view(v));
          const lmdb::InLmdb inside(t);
          lmdb::check(mdb_cursor_del(events.get(), 0), "deleting an event");
          drop_index_entries(t, dbs, key, e);
          chain = e.chain;
          last = id.sequence;
        }
      }
      if (last != 0) {
        lmdb::put(t, dbs.meta, schema::meta::kBaseSequence, schema::be64(last + 1));
        lmdb::put(t, dbs.meta, schema::meta::kBaseChain, schema::digest_view(chain));
        lmdb::put(t, dbs.meta, schema::meta::kBaseArchive, archive);
      }
    });
  });
}

namespace {

}  // namespace

// Refuses a store that any process has open: this one (the registry), or
// another (LMDB holds a shared lock on byte 0 of lock.mdb while a process
// has the environment open; a conflicting lock shows here).
void check_closed(const fs::path& canonical, const char* task) {
  if (registry::is_open(canonical)) {
    throw Error(ErrorCode::already_open,
                "store '" + canonical.string() + "' is open in this process: close it to " + task + " it");
  }
  const fs::path lock_path = canonical / "lock.mdb";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  probe.l_start = 0;
  probe.l_len = 1;
  const int rc = ::fcntl(fd, F_GETLK, &probe);
  ::close(fd);
  if (rc == 0 && probe.l_type != F_UNLCK) {
    throw Error(ErrorCode::already_open, "store '" + canonical.string() + "' is open in process " +
                                             std::to_string(probe.l_pid) + ": " + task + " needs it closed");
  }
}

namespace {

std::uint64_t size_of(const fs::path& file) {
  std::error_code ec;
  const std::uint64_t size = fs::file_size(file, ec);
  if (ec) throw Error(ErrorCode::io_error, "cannot read the size of '" + file.string() + "': " + ec.message());
  return size;
}

// The compacted copy, in `work` (removed again unless disarmed).
struct CompactCopy {
  fs::path work;
  bool keep = false;
  ~CompactCopy() {
    if (keep) return;
    std::error_code ignored;
    fs::remove_all(work, ignored);
  }
};

// LMDB's compacting copy of the store's last snapshot into `work`, with
// the data file's mode, synced.
void write_compacted_copy(const fs::path& canonical, const fs::path& work, mode_t mode) {
  // Owner-only while LMDB writes its copy there (it creates it 0666 less the
  // umask); the copy then takes the data file's own mode before replacing it.
  if (::mkdir(work.c_str(), 0700) != 0) {
    throw Error(ErrorCode::io_error, "cannot create '" + work.string() + "': " + std::strerror(errno));
  }
  lmdb::Env env;
  lmdb::check(mdb_env_set_maxdbs(env.get(), 8), "mdb_env_set_maxdbs");
  lmdb::check(mdb_env_open(env.get(), canonical.c_str(), MDB_NOTLS | MDB_RDONLY, 0600),
              "opening '" + canonical.string() + "'");
  const lmdb::InLmdb inside(env.get());
  const int rc = mdb_env_copy2(env.get(), work.c_str(), MDB_CP_COMPACT);
  if (rc > 0) {
    throw Error(ErrorCode::io_error, "writing the compacted copy: " + write_failure(rc, work, canonical / "data.mdb"));
  }
  lmdb::check(rc, "writing the compacted copy");
  if (::chmod((work / "data.mdb").c_str(), mode & 07777) != 0) {
    throw Error(ErrorCode::io_error, "cannot set the mode of the compacted copy: " + std::string(std::strerror(errno)));
  }
  sync_path(work / "data.mdb", false);
}

}  // namespace

fs::path closed_store(const fs::path& path, const char* task) {
  std::error_code ec;
  if (!fs::is_regular_file(path / "data.mdb", ec)) throw Error(ErrorCode::not_found, "no store at '" + path.string() + "'");
  const fs::path canonical = fs::canonical(path, ec);
  if (ec) throw Error(ErrorCode::io_error, "cannot resolve '" + path.string() + "': " + ec.message());
  check_closed(canonical, task);
  return canonical;
}

CompactReport compact_store(const fs::path& path) {
  std::error_code ec;
  const fs::path canonical = closed_store(path, "compact");
  CompactReport report;
  report.bytes_before = size_of(canonical / "data.mdb");
  struct stat data_stat {};
  if (::stat((canonical / "data.mdb").c_str(), &data_stat) != 0) {
    throw Error(ErrorCode::io_error,
                "cannot stat '" + (canonical / "data.mdb").string() + "': " + std::strerror(errno));
  }
  // LMDB's compacting copy walks the trees trusting every page.
  const lmdb::StructureReport structure = lmdb::walk_structure(canonical / "data.mdb", {std::nullopt, 1});
  if (!structure.ok()) {
    throw Error(ErrorCode::corruption, "store '" + canonical.string() +
                                           "' cannot be compacted: the file's structure is damaged (" +
                                           Environment::describe(structure) +
                                           "); run `lighthouse verify`, or copy out what can be read with "
                                           "`lighthouse salvage`");
  }
  if (auto marked = damage_mark::refusal(canonical)) throw Error(ErrorCode::corruption, *marked);
  // A copy a failed compact left behind is not the store's: it goes first.
  CompactCopy copy{canonical / ".compact"};
  fs::remove_all(copy.work, ec);
  write_compacted_copy(canonical, copy.work, data_stat.st_mode);
  if (::rename((copy.work / "data.mdb").c_str(), (canonical / "data.mdb").c_str()) != 0) {
    throw Error(ErrorCode::io_error,
                "cannot replace '" + (canonical / "data.mdb").string() + "': " + std::strerror(errno));
  }
  sync_path(canonical, true);
  report.bytes_after = size_of(canonical / "data.mdb");
  return report;
}

}  // namespace lighthouse
