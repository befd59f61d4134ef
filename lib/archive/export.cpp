// export_archive(): new events into new segment files, then the manifest.
#include <algorithm>
#include <memory>
#include <thread>

#include "archive/archive_record.h"
#include "archive/manifest.h"
#include "archive/progress.h"
#include "archive/segment_file.h"
#include "files.h"
#include "lighthouse/archive.h"
#include "lighthouse/store.h"
#include "store/archive_access.h"
#include "task_span.h"

namespace lighthouse {
namespace fs = std::filesystem;
namespace {

void check_export_options(const fs::path& dir, const ExportOptions& options) {
  if (options.segment_bytes < 1024) {
    throw Error(ErrorCode::invalid_argument,
                "segment size " + std::to_string(options.segment_bytes) + " bytes: the minimum is 1024");
  }
  if (options.level < 1 || options.level > 12) {
    throw Error(ErrorCode::invalid_argument, "compression level " + std::to_string(options.level) + ": it must be 1 to 12");
  }
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    throw Error(ErrorCode::invalid_argument, "archive path '" + dir.string() + "' is not a directory");
  }
  if (fs::is_symlink(dir, ec)) {
    throw Error(ErrorCode::invalid_argument, "archive path '" + dir.string() + "' is a symbolic link");
  }
}

// The archive must be this store's: its checkpoint event is ours (or, when
// the store was truncated right after it, the store's anchor is its chain).
void check_belongs(const Store& store, const StoreStats& stats, const ArchiveManifest& manifest, const fs::path& dir) {
  if (manifest.last_sequence > 0 && manifest.last_sequence + 1 == stats.base_sequence) {
    Query first;
    first.limit = 1;
    auto event = store.query(first).next();
    if (event && event->id.sequence != stats.base_sequence) event.reset();
    if (stats.base_chain != manifest.last_chain || (event && event->id.sequence != manifest.last_sequence + 1)) {
      throw Error(ErrorCode::invalid_argument, "archive '" + dir.string() + "' does not belong to this store");
    }
  } else if (manifest.last_sequence > 0) {
    Query at;
    at.from_sequence = manifest.last_sequence;
    at.to_sequence = manifest.last_sequence;
    auto event = store.query(at).next();
    if (!event || event->id.to_string() != manifest.last_id || to_hex(event->chain) != manifest.last_chain) {
      throw Error(ErrorCode::invalid_argument, "archive '" + dir.string() +
                                                   "' does not belong to this store: its checkpoint " +
                                                   manifest.last_id + " is not this store's event");
    }
  }
}

// The manifest this export extends: a new one, or the archive's own.
ArchiveManifest manifest_for(const Store& store, const StoreStats& stats, const fs::path& dir,
                             const ExportOptions& options, bool fresh) {
  const std::uint64_t max_record = archive::max_record_bytes(store.options().limits.max_event_bytes);
  ArchiveManifest manifest;
  if (fresh) {
    manifest.version = stats.format_version;  // its records are the store's format
    manifest.segment_bytes = options.segment_bytes;
    manifest.max_record_bytes = max_record;
    manifest.node_id = stats.node_id;
    // A truncated store's archive starts at its base and chains from its anchor.
    manifest.base_sequence = stats.base_sequence;
    manifest.base_chain = stats.base_chain.empty() ? archive::kZeroChain : stats.base_chain;
    manifest.last_sequence = stats.base_sequence - 1;
    manifest.last_chain = manifest.base_chain;
    return manifest;
  }
  manifest = archive::load_manifest(dir);
  if (manifest.version != stats.format_version) {
    // An upgraded store's events are of another record format (checksums
    // and chain recomputed): they start a new archive. The old one still
    // verifies, imports and serves `truncate --archive`.
    throw Error(ErrorCode::invalid_argument,
                "archive '" + dir.string() + "' holds records of format " + std::to_string(manifest.version) +
                    " and store '" + store.path().string() + "' is of format " + std::to_string(stats.format_version) +
                    " (upgraded): export it into a new archive");
  }
  manifest.segment_bytes = options.segment_bytes;
  manifest.max_record_bytes = std::max(manifest.max_record_bytes, max_record);
  check_belongs(store, stats, manifest, dir);
  return manifest;
}

// Writes the store's events after the manifest's checkpoint (up to what
// the store held when the export began) into new segments, rotated at
// options.segment_bytes of records; returns them, each renamed and synced.
class SegmentsExport {
 public:
  SegmentsExport(const fs::path& dir, const ArchiveManifest& manifest, const ExportOptions& options,
                 ExportReport& report)
      : dir_(dir),
        manifest_(manifest),
        options_(options),
        report_(report),
        threads_(options.threads != 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency())) {}

  std::vector<ArchiveSegment> run(const Store& store, std::uint64_t last_sequence, archive::Progress& progress) {
    Query q;
    q.from_sequence = manifest_.last_sequence + 1;
    q.to_sequence = last_sequence;
    for (const RecordedEvent& e : store.query(q)) {
      archive::encode_archive_record(record_, e);
      if (record_.size() > manifest_.max_record_bytes) {
        throw Error(ErrorCode::limit_exceeded, "event " + e.id.to_string() + " makes a record of " +
                                                   std::to_string(record_.size()) + " bytes: the limit is " +
                                                   std::to_string(manifest_.max_record_bytes));
      }
      add(e);
      progress.add(4 + record_.size());
    }
    if (writer_) close_segment();
    return std::move(written_);
  }

 private:
  void add(const RecordedEvent& e) {
    if (writer_ && writer_->record_bytes() + 4 + record_.size() > options_.segment_bytes) close_segment();
    if (!writer_) {
      writer_ = std::make_unique<archive::SegmentWriter>(
          dir_ / (".tmp-" + archive::segment_name(e.id.sequence, e.id.sequence)), options_.level, threads_,
          options_.file_mode);
      current_ = ArchiveSegment{};
      current_.first_id = e.id.to_string();
      current_.first_sequence = e.id.sequence;
    }
    writer_->add(record_);
    current_.last_id = e.id.to_string();
    current_.last_sequence = e.id.sequence;
    current_.chain = to_hex(e.chain);
    ++current_.count;
    ++report_.events;
  }

  void close_segment() {
    const std::string name = archive::segment_name(current_.first_sequence, current_.last_sequence);
    const auto result = writer_->finish(dir_ / name);
    writer_.reset();
    current_.file = name;
    current_.record_bytes = result.record_bytes;
    current_.compressed_bytes = result.compressed_bytes;
    current_.sha256 = to_hex(result.sha256);
    report_.record_bytes += result.record_bytes;
    report_.compressed_bytes += result.compressed_bytes;
    written_.push_back(current_);
  }

  const fs::path& dir_;
  const ArchiveManifest& manifest_;
  const ExportOptions& options_;
  ExportReport& report_;
  const unsigned threads_;
  std::unique_ptr<archive::SegmentWriter> writer_;
  ArchiveSegment current_;
  std::string record_;
  std::vector<ArchiveSegment> written_;
};

}  // namespace

static ExportReport export_untraced(const Store& store, const fs::path& dir, const ExportOptions& options) {
  check_export_options(dir, options);
  std::error_code ec;
  create_directory_for(dir, options.file_mode, ec);
  if (ec) throw Error(ErrorCode::io_error, "cannot create '" + dir.string() + "': " + ec.message());

  ExportReport report;
  const StoreStats stats = store.stats();
  const bool fresh = !fs::exists(dir / archive::kManifestName, ec);
  ArchiveManifest manifest = manifest_for(store, stats, dir, options, fresh);
  for (const auto& name : archive::leftover_files(dir, manifest)) {
    fs::remove(dir / name, ec);
    report.removed_leftovers.push_back(name);
  }
  archive::Progress progress(
      options.progress, stats.last_sequence > manifest.last_sequence ? stats.last_sequence - manifest.last_sequence : 0);
  std::vector<ArchiveSegment> written;
  if (stats.last_sequence > manifest.last_sequence) {
    written = SegmentsExport(dir, manifest, options, report).run(store, stats.last_sequence, progress);
  }
  // The manifest moves on only once every new segment is durable.
  if (!written.empty() || fresh) {
    for (auto& s : written) manifest.segments.push_back(s);
    if (!written.empty()) {
      manifest.last_id = written.back().last_id;
      manifest.last_sequence = written.back().last_sequence;
      manifest.last_chain = written.back().chain;
    }
    archive::store_manifest(dir, manifest, options.file_mode);
  }
  report.segments = written.size();
  progress.done();
  report.seconds = progress.seconds();
  return report;
}

ExportReport export_archive(const Store& store, const fs::path& dir, const ExportOptions& options) {
  return traced_task(store_access::options(store), "export", store.path(), [&](tracing::Span* span) {
    ExportReport report = export_untraced(store, dir, options);
    if (span) {
      span->set("lighthouse.archive", dir.string());
      span->set("lighthouse.events", static_cast<std::int64_t>(report.events));
    }
    return report;
  });
}

}  // namespace lighthouse
