// Retention: truncate_before() and compact().
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "archive/manifest.h"
#include "archive/segment_file.h"
#include "codec/record.h"
#include "store/registry.h"
#include "store/schema.h"
#include "store/store_impl.h"

namespace lighthouse {
namespace fs = std::filesystem;
namespace {

constexpr std::uint64_t kEventsPerTransaction = 10'000;

}  // namespace

// Drops events with sequences base..to in one write transaction and moves
// the base past them.
void Store::Impl::drop_events(std::uint64_t to_sequence, const std::string& archive) {
  run_exclusive([&] {
    with_write_txn([&](MDB_txn* t) {
      Sha256 chain{};
      std::uint64_t last = 0;
      {
        lmdb::Cursor events(t, dbs_.events);
        MDB_val k, v;
        while (events.seek(k, v, MDB_FIRST)) {
          const std::string key(lmdb::view(k));
          const EventId id = EventId::from_key(key);
          if (id.sequence > to_sequence) break;
          RecordedEvent e = codec::decode_record(id, lmdb::view(v));
          lmdb::check(mdb_cursor_del(events.get(), 0), "deleting an event");
          MDB_val tk = lmdb::val(e.type), tv = lmdb::val(key);
          int rc = mdb_del(t, dbs_.by_type, &tk, &tv);
          if (rc != MDB_NOTFOUND) lmdb::check(rc, "deleting a by_type entry");
          if (!e.aggregate.empty()) {
            const std::string entry = schema::be64(e.aggregate_version) + key;
            MDB_val ak = lmdb::val(e.aggregate), av = lmdb::val(entry);
            rc = mdb_del(t, dbs_.by_aggregate, &ak, &av);
            if (rc != MDB_NOTFOUND) lmdb::check(rc, "deleting a by_aggregate entry");
            lmdb::Cursor rest(t, dbs_.by_aggregate);
            MDB_val rk = lmdb::val(e.aggregate), rv;
            if (!rest.seek(rk, rv, MDB_SET)) {
              // The aggregate lost all its events: keep its head.
              lmdb::put(t, dbs_.aggregate_heads, e.aggregate, schema::be64(e.aggregate_version));
            }
          }
          if (e.idempotency_key) {
            Sha256 hash = codec::content_hash(codec::RecordFields::of(e));
            lmdb::put(t, dbs_.by_idempotency_key, *e.idempotency_key,
                      key + std::string(reinterpret_cast<const char*>(hash.data()), 32) +
                          schema::be64(e.aggregate_version));
          }
          chain = e.chain;
          last = id.sequence;
        }
      }
      if (last != 0) {
        lmdb::put(t, dbs_.meta, schema::meta::kBaseSequence, schema::be64(last + 1));
        lmdb::put(t, dbs_.meta, schema::meta::kBaseChain,
                  std::string_view(reinterpret_cast<const char*>(chain.data()), 32));
        lmdb::put(t, dbs_.meta, schema::meta::kBaseArchive, archive);
      }
    });
  });
}

TruncateReport Store::truncate_before(const EventId& id, const fs::path& archive_dir) {
  impl().refuse_read_only(read_only_handle_);
  const auto start = std::chrono::steady_clock::now();
  const StoreStats stats = this->stats();
  TruncateReport report;
  report.base_sequence = stats.base_sequence;
  // The cut: the first event at or after `id`; everything before it goes.
  std::uint64_t cut = stats.last_sequence + 1;
  {
    // after_id is exclusive: step back to make `id` itself kept.
    Query q;
    q.limit = 1;
    if (id != EventId{}) {
      EventId before = id;
      if (before.node_id > 0) {
        --before.node_id;
      } else if (before.sequence > 0) {
        --before.sequence;
        before.node_id = ~0u;
      } else {
        --before.timestamp_ns;
        before.sequence = ~0ull;
        before.node_id = ~0u;
      }
      q.after_id = before;
    }
    if (auto first_kept = query(q).next()) cut = first_kept->id.sequence;
  }
  // The archive must be one even when there is nothing to drop: a wrong path
  // is the caller's mistake, not a successful no-op.
  const fs::path dir = fs::absolute(archive_dir);
  const ArchiveManifest manifest = archive::load_manifest(dir);
  if (cut <= stats.base_sequence) return report;  // nothing before `id`
  const std::uint64_t drop_to = cut - 1;

  if (manifest.base_sequence > stats.base_sequence) {
    throw Error(ErrorCode::invalid_argument, "archive '" + dir.string() + "' starts at sequence " +
                                                 std::to_string(manifest.base_sequence) +
                                                 ": it does not hold the store's events from " +
                                                 std::to_string(stats.base_sequence));
  }
  if (manifest.last_sequence < drop_to) {
    throw Error(ErrorCode::invalid_argument,
                "archive '" + dir.string() + "' holds events up to sequence " +
                    std::to_string(manifest.last_sequence) +
                    " (its export checkpoint); truncating before " + id.to_string() +
                    " would drop events up to " + std::to_string(drop_to) + ": export first");
  }
  // Re-verify what covers the range, and check it is this store's history.
  const std::string archived_chain =
      archive::verify_through(dir, manifest, stats.base_sequence, drop_to);
  Query last_dropped;
  last_dropped.from_sequence = drop_to;
  last_dropped.to_sequence = drop_to;
  auto event = query(last_dropped).next();
  if (!event || to_hex(event->chain) != archived_chain) {
    throw Error(ErrorCode::invalid_argument,
                "archive '" + dir.string() + "' does not hold this store's event " +
                    std::to_string(drop_to) +
                    " (its chain differs): it is another store's archive");
  }
  for (std::uint64_t from = stats.base_sequence; from <= drop_to; from += kEventsPerTransaction) {
    impl().drop_events(std::min(drop_to, from + kEventsPerTransaction - 1), dir.string());
  }
  report.events_dropped = drop_to - stats.base_sequence + 1;
  report.base_sequence = cut;
  report.archive = dir.string();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

CompactReport Store::compact(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path / "data.mdb", ec)) {
    throw Error(ErrorCode::not_found, "no store at '" + path.string() + "'");
  }
  const fs::path canonical = fs::canonical(path, ec);
  if (registry::is_open(canonical)) {
    throw Error(ErrorCode::already_open, "store '" + canonical.string() +
                                             "' is open in this process: close it to compact it");
  }
  // LMDB holds a shared lock on byte 0 of lock.mdb while a process has the
  // environment open; a conflicting lock of another process shows here.
  const fs::path lock_path = canonical / "lock.mdb";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    struct flock probe {};
    probe.l_type = F_WRLCK;
    probe.l_whence = SEEK_SET;
    probe.l_start = 0;
    probe.l_len = 1;
    int rc = ::fcntl(fd, F_GETLK, &probe);
    ::close(fd);
    if (rc == 0 && probe.l_type != F_UNLCK) {
      throw Error(ErrorCode::already_open,
                  "store '" + canonical.string() + "' is open in process " +
                      std::to_string(probe.l_pid) + ": compact needs it closed");
    }
  }
  CompactReport report;
  report.bytes_before = fs::file_size(canonical / "data.mdb");
  const fs::path work = canonical / ".compact";
  fs::remove_all(work, ec);
  // Owner-only while LMDB writes its copy there (it creates it 0666 less the
  // umask); the copy then takes the data file's own mode before replacing it.
  if (::mkdir(work.c_str(), 0700) != 0) {
    throw Error(ErrorCode::io_error, "cannot create '" + work.string() + "': " + std::strerror(errno));
  }
  struct stat data_stat {};
  if (::stat((canonical / "data.mdb").c_str(), &data_stat) != 0) {
    throw Error(ErrorCode::io_error, "cannot stat '" + (canonical / "data.mdb").string() +
                                         "': " + std::strerror(errno));
  }
  {
    lmdb::Env env;
    lmdb::check(mdb_env_set_maxdbs(env.get(), 8), "mdb_env_set_maxdbs");
    lmdb::check(mdb_env_open(env.get(), canonical.c_str(), MDB_NOTLS | MDB_RDONLY, 0600),
                "opening '" + canonical.string() + "'");
    lmdb::check(mdb_env_copy2(env.get(), work.c_str(), MDB_CP_COMPACT),
                "writing the compacted copy");
  }
  if (::chmod((work / "data.mdb").c_str(), data_stat.st_mode & 07777) != 0) {
    throw Error(ErrorCode::io_error, "cannot set the mode of the compacted copy: " +
                                         std::string(std::strerror(errno)));
  }
  archive::sync_path(work / "data.mdb", false);
  if (::rename((work / "data.mdb").c_str(), (canonical / "data.mdb").c_str()) != 0) {
    throw Error(ErrorCode::io_error, "cannot replace '" + (canonical / "data.mdb").string() +
                                         "': " + std::strerror(errno));
  }
  archive::sync_path(canonical, true);
  fs::remove_all(work, ec);
  report.bytes_after = fs::file_size(canonical / "data.mdb");
  return report;
}

}  // namespace lighthouse
