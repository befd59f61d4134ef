#include "store/store_impl.h"

#include <system_error>

#include "codec/record.h"
#include "files.h"
#include "lighthouse/version.h"
#include "store/clock.h"
#include "store/registry.h"
#include "store/validation.h"

namespace lighthouse {
namespace fs = std::filesystem;

std::shared_ptr<Store::Impl> Store::Impl::open(const fs::path& path, const Options& options) {
  if (path.empty()) throw Error(ErrorCode::invalid_argument, "store path is empty");
  validation::check_options(options);
  std::error_code ec;
  if (fs::exists(path, ec) && !fs::is_directory(path, ec)) {
    throw Error(ErrorCode::invalid_argument, "store path '" + path.string() + "' is not a directory");
  }
  // LMDB would follow a link out of the store directory: a store's files
  // must be its own.
  for (const char* name : {"data.mdb", "lock.mdb"}) {
    if (fs::is_symlink(fs::symlink_status(path / name, ec))) {
      throw Error(ErrorCode::invalid_argument, "store '" + path.string() + "': " + name +
                                                   " is a symbolic link; Lighthouse does not follow links out of a "
                                                   "store directory");
    }
  }
  ec.clear();
  const bool exists = fs::exists(path / "data.mdb", ec);
  if (ec) {
    // A directory we may not enter is not "no store".
    throw Error(ErrorCode::io_error, "cannot open store '" + path.string() + "': " + ec.message());
  }
  fs::path first_existing;  // of a new store's directory and its parents
  if (!exists) {
    if (options.read_only || !options.create_if_missing) {
      throw Error(ErrorCode::not_found, "no store at '" + path.string() + "'");
    }
    first_existing = fs::absolute(directory_path(path), ec);
    while (!first_existing.empty() && !fs::exists(first_existing, ec) && first_existing.has_parent_path() &&
           first_existing.parent_path() != first_existing) {
      first_existing = first_existing.parent_path();
    }
    create_directory_for(path, options.file_mode, ec);
    if (ec) throw Error(ErrorCode::io_error, "cannot create store directory '" + path.string() + "': " + ec.message());
  }
  fs::path canonical = fs::canonical(path, ec);
  if (ec) throw Error(ErrorCode::io_error, "cannot resolve '" + path.string() + "': " + ec.message());
  auto impl = registry::acquire(canonical, [&] { return std::make_shared<Impl>(canonical, options); });
  if (!exists && !first_existing.empty()) {
    // A new store is durable only once its names are: data.mdb in its
    // directory, and each directory made for it in its parent (LMDB syncs
    // the file, never a directory). Power-loss tests: tests/crash/.
    const fs::path stop = fs::canonical(first_existing, ec);
    for (fs::path dir = canonical; !ec; dir = dir.parent_path()) {
      sync_path(dir, true);
      if (dir == stop || !dir.has_parent_path() || dir.parent_path() == dir) break;
    }
  }
  if (impl->options().read_only && !options.read_only && impl->format_version() == kFormatVersion) {
    throw Error(ErrorCode::already_open, "store '" + canonical.string() +
                                             "' is already open read-only in this process; close it to open it for "
                                             "writing");
  }
  return impl;
}

namespace {

// A corruption found while opening that does not yet say which store: it
// does now. Any other error goes on as it is.
[[noreturn]] void rethrow_naming(const fs::path& store, const Error& e) {
  const std::string_view what = e.what();
  if (e.code() != ErrorCode::corruption || what.find(store.string()) != std::string_view::npos) throw;  // (called from its catch)
  std::string message = "store '" + store.string() + "' is damaged: " + std::string(what);
  if (what.find("lighthouse verify") == std::string_view::npos) message += " (run `lighthouse verify`)";
  throw Error(ErrorCode::corruption, message);
}

}  // namespace

Store::Impl::Impl(fs::path canonical_path, const Options& options)
    : path_(std::move(canonical_path)), options_(options), env_(std::make_unique<Environment>(path_, options_)) {
  {
    lmdb::Txn txn(env_->get(), options_.read_only);
    try {
      identity_ = schema::open_databases(txn.get(), path_, options_, wall_clock_ns(options_));
    } catch (const Error& e) {
      rethrow_naming(path_, e);
    }
    if (options_.check_on_open && identity_.importing) {
      throw Error(ErrorCode::corruption,
                  "store '" + path_.string() + "' holds an import that was interrupted: remove the store and import again");
    }
    if (options_.check_on_open) {
      try {
        check_invariants(txn.get());
      } catch (const Error& e) {
        rethrow_naming(path_, e);
      }
    }
    txn.commit();
  }
  if (identity_.format_version < kFormatVersion && !options_.read_only) {
    // An older format is read, never written: every write is refused with
    // the way out (refuse_read_only).
    options_.read_only = true;
  }
  if (options_.monitor) {
    monitor::SlaMonitor::NowNs now = options_.monotonic_clock;
    if (!now) now = steady_ns;
    monitor_ = std::make_unique<monitor::SlaMonitor>(options_.sla, std::move(now));
  }
  health_ = std::make_unique<HealthController>(*env_, identity_.dbs, options_, monitor_.get(), health_effects());
  gate_ = std::make_unique<ReplicationGate>(*env_, identity_.dbs, options_, [this] { hub_.notify(); });
  reader_ = std::make_unique<ReadPath>(*env_, identity_.dbs, options_, monitor_.get(), *health_, *gate_);
  if (!options_.read_only) {
    writer_ = std::make_unique<WritePath>(*env_, identity_.dbs, options_, identity_.node_id, monitor_.get(), *health_,
                                          *gate_, [this] { hub_.notify(); });
    checkpoints_ = std::make_unique<Checkpoints>(*writer_, identity_.dbs);
  }
  // The recorded state is adopted (and a failure of an ended process
  // cleared) before the committer takes the first group ...
  health_->start();
  if (writer_) {
    writer_->start();
    // ... so that a store opened degraded bounds its groups from the first one.
    writer_->bound_group_events(health_->group_bound(health_->cached_state()));
  }
}

HealthController::Effects Store::Impl::health_effects() {
  HealthController::Effects effects;
  effects.write = [this](const monitor::HealthRecord& record, const HealthTransition& transition) {
    return writer().write_health(record, transition);
  };
  effects.bound_groups = [this](std::size_t events) {
    if (writer_) writer_->bound_group_events(events);
  };
  effects.now_ns = [this] { return wall_clock_ns(options_); };
  return effects;
}

Store::Impl::~Impl() { shutdown(); }

void Store::Impl::shutdown() noexcept {
  // Subscriptions end first — outside the registry's lock, since their
  // handlers may open or close stores: none reads past this point.
  hub_.stop_all(checkpoints_.get());
  registry::release(path_, this, [this] {
    // Queued appends are committed (or failed) before the environment closes.
    if (writer_) writer_->stop();
    // Appends still waiting for the stream fail (replication_pending).
    gate_->stop();
    env_->close();
  });
}

WritePath& Store::Impl::writer() const {
  if (!writer_) throw Error(ErrorCode::read_only, "store '" + path_.string() + "' is open read-only");
  return *writer_;
}

Checkpoints& Store::Impl::checkpoints() const {
  if (!checkpoints_) throw Error(ErrorCode::read_only, "store '" + path_.string() + "' is open read-only");
  return *checkpoints_;
}

void Store::Impl::refuse_read_only(bool handle_read_only) const {
  if (identity_.format_version < kFormatVersion) {
    throw Error(ErrorCode::read_only, "store '" + path_.string() + "' has format version " +
                                          std::to_string(identity_.format_version) + ": it opens read-only; run `lighthouse upgrade " +
                                          path_.string() + "` to rewrite it in format " + std::to_string(kFormatVersion));
  }
  if (handle_read_only || options_.read_only) {
    throw Error(ErrorCode::read_only, "store '" + path_.string() + "' is open read-only");
  }
}

// O(1) checks that the counters in `meta` agree with the ends of `events`.
void Store::Impl::check_invariants(MDB_txn* txn) const {
  auto broken = [&](const std::string& what) {
    throw Error(ErrorCode::corruption,
                "store '" + path_.string() + "': " + what + " (run `lighthouse verify` for a full report)");
  };
  const Databases& dbs = identity_.dbs;
  schema::Counters c;
  try {
    c = schema::read_counters(txn, dbs);
  } catch (const Error& error) {
    broken(error.what());
  }
  lmdb::Cursor cursor(txn, dbs.events);
  MDB_val key, value;
  if (!cursor.seek(key, value, MDB_LAST)) {
    if (c.last_sequence + 1 != c.base_sequence) {
      broken("meta says the last sequence is " + std::to_string(c.last_sequence) +
             " but the store holds no events after its base " + std::to_string(c.base_sequence));
    }
    return;
  }
  const EventId last = schema::decode_event_key(lmdb::view(key), "the last event");
  if (last.sequence != c.last_sequence || last.timestamp_ns != c.last_timestamp_ns) {
    broken("meta says the last event is sequence " + std::to_string(c.last_sequence) + " at " +
           std::to_string(c.last_timestamp_ns) + " ns, but the last stored event is " + last.to_string());
  }
  const RecordedEvent event = codec::decode_record(last, lmdb::view(value));
  if (!c.has_last_chain || event.chain != c.last_chain) {
    broken("meta 'last_chain' differs from the chain of the last event " + last.to_string());
  }
  MDB_val first_key, first_value;
  cursor.seek(first_key, first_value, MDB_FIRST);
  const EventId first = schema::decode_event_key(lmdb::view(first_key), "the first event");
  const std::uint64_t count = lmdb::entries(txn, dbs.events);
  if (first.sequence != c.base_sequence) {
    broken("the first event has sequence " + std::to_string(first.sequence) + " but the base is " +
           std::to_string(c.base_sequence));
  }
  if (last.sequence - first.sequence + 1 != count) {
    broken("sequences " + std::to_string(first.sequence) + ".." + std::to_string(last.sequence) + " but " +
           std::to_string(count) + " events are stored (a gap)");
  }
}

StoreStats Store::Impl::stats() const {
  auto lock = env_->use();
  auto read = env_->begin_read();
  MDB_txn* txn = read->get();
  const Databases& dbs = identity_.dbs;
  const schema::Counters c = schema::read_counters(txn, dbs);
  StoreStats s;
  s.event_count = lmdb::entries(txn, dbs.events);
  s.last_sequence = c.last_sequence;
  s.last_timestamp_ns = c.last_timestamp_ns;
  s.aggregate_count = c.aggregate_count;
  {
    // Distinct types: one step per type (stores hold few types).
    lmdb::Cursor cursor(txn, dbs.by_type);
    MDB_val k, v;
    for (bool ok = cursor.seek(k, v, MDB_FIRST); ok; ok = cursor.seek(k, v, MDB_NEXT_NODUP)) ++s.type_count;
  }
  s.node_id = identity_.node_id;
  s.format_version = identity_.format_version;
  s.map_size_bytes = env_->map_size_bytes();
  s.map_used_bytes = env_->map_used_bytes();
  s.read_only = options_.read_only;
  s.append_backlog = writer_ ? writer_->backlog() : 0;
  s.commits = writer_ ? writer_->commits() : 0;
  s.base_sequence = c.base_sequence;
  std::string_view archive;
  if (lmdb::get(txn, dbs.meta, schema::meta::kBaseArchive, archive)) s.base_archive = archive;
  if (schema::read_digest(txn, dbs, schema::meta::kBaseChain)) s.base_chain = to_hex(c.base_chain);
  s.failure = env_->failure();
  return s;
}

}  // namespace lighthouse
