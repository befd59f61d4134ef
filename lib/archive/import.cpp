// import_archive(): a store rebuilt from an archive, or continued by it.
#include <vector>

#include "archive/archive_walk.h"
#include "archive/progress.h"
#include "lighthouse/archive.h"
#include "lighthouse/store.h"
#include "store/archive_access.h"
#include "task_span.h"

namespace lighthouse {
namespace fs = std::filesystem;
namespace {

// Events written per exclusive task (and so per write transaction).
constexpr std::size_t kChunkEvents = 20'000;
constexpr std::size_t kChunkBytes = 32u << 20;

// What the archive must be to continue `store`; returns the chain of the
// store's last event (zeros when it is empty).
std::string check_continuation(const Store& store, const StoreStats& stats, const ArchiveManifest& manifest) {
  if (stats.read_only) {  // the handle's own flag included
    throw Error(ErrorCode::read_only, "store '" + store.path().string() + "' is open read-only");
  }
  std::string store_chain = archive::kZeroChain;
  if (stats.last_sequence > 0) {
    Query last;
    last.from_sequence = stats.last_sequence;
    auto event = store.query(last).next();
    if (event) store_chain = to_hex(event->chain);
    if (stats.last_sequence > manifest.last_sequence) {
      throw Error(ErrorCode::invalid_argument, "store '" + store.path().string() + "' holds events up to sequence " +
                                                   std::to_string(stats.last_sequence) + ", past the archive's " +
                                                   std::to_string(manifest.last_sequence));
    }
  }
  if (manifest.version == 1 && stats.last_sequence > 0) {
    throw Error(ErrorCode::invalid_argument,
                "the archive holds records of format 1: it imports only into an empty store (the import rewrites "
                "each event's checksum and chain in format " + std::to_string(stats.format_version) + ")");
  }
  if (stats.last_sequence == 0 && manifest.base_sequence != 1) {
    throw Error(ErrorCode::invalid_argument, "the archive starts at sequence " + std::to_string(manifest.base_sequence) +
                                                 ": an empty store can only take an archive from sequence 1");
  }
  return store_chain;
}

// Writes the archive's events after the store's last, in chunks, between
// begin_import() and end_import().
class ImportWriter {
 public:
  ImportWriter(Store& store, ImportReport& report) : store_(store), report_(report) {}

  void add(const RecordedEvent& e, std::size_t bytes) {
    if (!began_) {
      store_access::begin_import(store_);
      began_ = true;
    }
    chunk_.push_back(e);
    chunk_bytes_ += bytes;
    report_.record_bytes += bytes;
    ++report_.events;
    if (chunk_.size() >= kChunkEvents || chunk_bytes_ >= kChunkBytes) flush();
  }

  void finish() {
    try {
      flush();
    } catch (...) {
      if (began_ && !report_.last) store_access::end_import(store_);  // nothing was written: clear the mark
      throw;
    }
    if (began_) store_access::end_import(store_);
  }

 private:
  void flush() {
    if (chunk_.empty()) return;
    try {
      store_access::import_events(store_, chunk_);
    } catch (const Error& error) {
      if (!report_.last) {
        if (began_) store_access::end_import(store_);  // nothing was written: clear the mark
        began_ = false;
        throw;
      }
      throw Error(error.code(), std::string(error.what()) + " (the import stopped after event " +
                                    report_.last->to_string() +
                                    "; the store holds a partial import: remove it and import again)");
    }
    report_.last = chunk_.back().id;
    chunk_.clear();
    chunk_bytes_ = 0;
  }

  Store& store_;
  ImportReport& report_;
  std::vector<RecordedEvent> chunk_;
  std::size_t chunk_bytes_ = 0;
  bool began_ = false;
};

}  // namespace

static ImportReport import_untraced(const fs::path& dir, Store& store, const ImportOptions& options) {
  const StoreStats stats = store.stats();
  const ArchiveManifest manifest = archive::load_manifest(dir);
  const std::string store_chain = check_continuation(store, stats, manifest);
  // A damaged archive changes nothing: every segment up to the import's end
  // is checked (hashes, records, checksums, chain) before anything is written.
  archive::ArchiveWalk(dir, manifest).run(
      [&](const RecordedEvent& e, std::size_t) { return !(options.until && options.until < e.id); });

  ImportReport report;
  archive::Progress progress(options.progress, manifest.last_sequence - stats.last_sequence);
  ImportWriter writer(store, report);
  bool continues = stats.last_sequence == 0;
  Sha256 upgraded_chain{};  // a format-1 archive's events, rechained (into an empty store: from zeros)
  archive::ArchiveWalk(dir, manifest).run([&](const RecordedEvent& e, std::size_t bytes) {
    if (options.until && options.until < e.id) return false;
    if (e.id.sequence <= stats.last_sequence) {
      // Events the store has already: the archive must continue it exactly.
      if (e.id.sequence == stats.last_sequence) {
        if (to_hex(e.chain) != store_chain) {
          throw Error(ErrorCode::invalid_argument, "the archive does not continue store '" + store.path().string() +
                                                       "': event " + e.id.to_string() +
                                                       " has another chain than the store's last event");
        }
        continues = true;
      }
      return true;
    }
    if (!continues) {
      throw Error(ErrorCode::invalid_argument, "the archive does not continue store '" + store.path().string() + "'");
    }
    if (e.record_format == codec::kRecordFormat1) {
      // Into format 2: the checksum and the chain recomputed (the archive's
      // own were verified by the walk above).
      RecordedEvent upgraded = e;
      codec::to_format2(upgraded, upgraded_chain);
      writer.add(upgraded, bytes);
    } else {
      writer.add(e, bytes);
    }
    progress.add(bytes);
    return true;
  });
  writer.finish();
  progress.done();
  report.seconds = progress.seconds();
  return report;
}

ImportReport import_archive(const fs::path& dir, Store& store, const ImportOptions& options) {
  return traced_task(store_access::options(store), "import", store.path(), [&](tracing::Span* span) {
    ImportReport report = import_untraced(dir, store, options);
    if (span) {
      span->set("lighthouse.archive", dir.string());
      span->set("lighthouse.events", static_cast<std::int64_t>(report.events));
    }
    return report;
  });
}

}  // namespace lighthouse
