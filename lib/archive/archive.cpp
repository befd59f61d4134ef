// export_archive, import_archive, verify_archive.
#include "lighthouse/archive.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "archive/archive_record.h"
#include "archive/manifest.h"
#include "files.h"
#include "archive/segment_file.h"
#include "codec/record.h"
#include "lighthouse/store.h"
#include "store/archive_access.h"

namespace lighthouse {
namespace fs = std::filesystem;
using archive::SegmentReader;
using archive::SegmentWriter;

namespace {

using Clock = std::chrono::steady_clock;

std::string hex(const Sha256& d) { return to_hex(d); }
const std::string kZeroChain(64, '0');

// The largest record an event within `max_event_bytes` can make: the content,
// its MessagePack headers (at most 5 bytes per metadata string, and a
// metadata entry has at least 2 bytes of content), and a fixed envelope.
std::uint64_t max_record_bytes(std::uint64_t max_event_bytes) {
  return 4 * max_event_bytes + 4096;
}

class Progress {
 public:
  Progress(const ArchiveProgressCallback& callback, std::uint64_t total)
      : callback_(callback), start_(Clock::now()), last_(start_) {
    state_.total_events = total;
  }
  void add(std::uint64_t record_bytes) {
    ++state_.events;
    state_.record_bytes += record_bytes;
    if (callback_ && (state_.events & 1023) == 0) {
      auto now = Clock::now();
      if (now - last_ > std::chrono::milliseconds(200)) report(now);
    }
  }
  void done() {
    if (callback_) report(Clock::now());
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  void report(Clock::time_point now) {
    last_ = now;
    state_.seconds = std::chrono::duration<double>(now - start_).count();
    callback_(state_);
  }
  const ArchiveProgressCallback& callback_;
  ArchiveProgress state_;
  Clock::time_point start_, last_;
};

// Removes what an interrupted export left: temporary files and segments the
// manifest does not name. Returns their names.
std::vector<std::string> leftovers(const fs::path& dir, const ArchiveManifest& m) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!archive::is_archive_file(name)) continue;
    bool listed = std::any_of(m.segments.begin(), m.segments.end(),
                              [&](const ArchiveSegment& s) { return s.file == name; });
    if (!listed) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

ArchiveManifest read_manifest(const fs::path& dir) { return archive::load_manifest(dir); }

ExportReport export_archive(const Store& store, const fs::path& dir, const ExportOptions& options) {
  if (options.segment_bytes < 1024) {
    throw Error(ErrorCode::invalid_argument, "segment size " + std::to_string(options.segment_bytes) +
                                                 " bytes: the minimum is 1024");
  }
  if (options.level < 1 || options.level > 12) {
    throw Error(ErrorCode::invalid_argument,
                "compression level " + std::to_string(options.level) + ": it must be 1 to 12");
  }
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    throw Error(ErrorCode::invalid_argument, "archive path '" + dir.string() + "' is not a directory");
  }
  if (fs::is_symlink(dir, ec)) {
    throw Error(ErrorCode::invalid_argument, "archive path '" + dir.string() + "' is a symbolic link");
  }
  create_directory_for(dir, options.file_mode, ec);
  if (ec) throw Error(ErrorCode::io_error, "cannot create '" + dir.string() + "': " + ec.message());

  ExportReport report;
  const StoreStats stats = store.stats();
  ArchiveManifest manifest;
  bool fresh = !fs::exists(dir / archive::kManifestName, ec);
  if (fresh) {
    manifest.segment_bytes = options.segment_bytes;
    manifest.max_record_bytes = max_record_bytes(store.options().limits.max_event_bytes);
    manifest.node_id = stats.node_id;
    // A truncated store's archive starts at its base and chains from its anchor.
    manifest.base_sequence = stats.base_sequence;
    manifest.base_chain = stats.base_chain.empty() ? kZeroChain : stats.base_chain;
    manifest.last_sequence = stats.base_sequence - 1;
    manifest.last_chain = manifest.base_chain;
  } else {
    manifest = archive::load_manifest(dir);
    manifest.segment_bytes = options.segment_bytes;
    manifest.max_record_bytes =
        std::max(manifest.max_record_bytes, max_record_bytes(store.options().limits.max_event_bytes));
    // The archive must be this store's: its checkpoint event is ours.
    if (manifest.last_sequence > 0 && manifest.last_sequence + 1 == stats.base_sequence) {
      // The checkpoint event was truncated: the store's anchor is its chain.
      Query first;
      first.limit = 1;
      auto event = store.query(first).next();
      if (event && event->id.sequence != stats.base_sequence) event.reset();
      if (stats.base_chain != manifest.last_chain || (event && event->id.sequence != manifest.last_sequence + 1)) {
        throw Error(ErrorCode::invalid_argument,
                    "archive '" + dir.string() + "' does not belong to this store");
      }
    } else if (manifest.last_sequence > 0) {
      Query at;
      at.from_sequence = manifest.last_sequence;
      at.to_sequence = manifest.last_sequence;
      auto event = store.query(at).next();
      if (!event || event->id.to_string() != manifest.last_id || hex(event->chain) != manifest.last_chain) {
        throw Error(ErrorCode::invalid_argument,
                    "archive '" + dir.string() + "' does not belong to this store: its checkpoint " +
                        manifest.last_id + " is not this store's event");
      }
    }
  }
  for (const auto& name : leftovers(dir, manifest)) {
    fs::remove(dir / name, ec);
    report.removed_leftovers.push_back(name);
  }

  const unsigned threads = options.threads != 0 ? options.threads
                                                : std::max(1u, std::thread::hardware_concurrency());
  Query q;
  q.from_sequence = manifest.last_sequence + 1;
  q.to_sequence = stats.last_sequence;  // what the store held when the export began
  Progress progress(options.progress,
                    stats.last_sequence > manifest.last_sequence ? stats.last_sequence - manifest.last_sequence : 0);
  std::unique_ptr<SegmentWriter> writer;
  ArchiveSegment current;
  std::string record;
  std::vector<ArchiveSegment> written;
  auto close_segment = [&] {
    const std::string name = archive::segment_name(current.first_sequence, current.last_sequence);
    auto result = writer->finish(dir / name);
    writer.reset();
    current.file = name;
    current.record_bytes = result.record_bytes;
    current.compressed_bytes = result.compressed_bytes;
    current.sha256 = hex(result.sha256);
    report.record_bytes += result.record_bytes;
    report.compressed_bytes += result.compressed_bytes;
    written.push_back(current);
  };
  if (stats.last_sequence > manifest.last_sequence) {
    for (const RecordedEvent& e : store.query(q)) {
      archive::encode_archive_record(record, e);
      if (record.size() > manifest.max_record_bytes) {
        throw Error(ErrorCode::limit_exceeded, "event " + e.id.to_string() + " makes a record of " +
                                                   std::to_string(record.size()) + " bytes: the limit is " +
                                                   std::to_string(manifest.max_record_bytes));
      }
      if (writer && writer->record_bytes() + 4 + record.size() > options.segment_bytes) close_segment();
      if (!writer) {
        writer = std::make_unique<SegmentWriter>(
            dir / (".tmp-" + archive::segment_name(e.id.sequence, e.id.sequence)), options.level, threads,
            options.file_mode);
        current = ArchiveSegment{};
        current.first_id = e.id.to_string();
        current.first_sequence = e.id.sequence;
      }
      writer->add(record);
      current.last_id = e.id.to_string();
      current.last_sequence = e.id.sequence;
      current.chain = hex(e.chain);
      ++current.count;
      ++report.events;
      progress.add(4 + record.size());
    }
    if (writer) close_segment();
  }
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

namespace {

// Streams an archive's events in order, checking each (hash of its segment
// before reading it, length bound, record, checksum, chain, sequence).
class ArchiveWalk {
 public:
  ArchiveWalk(fs::path dir, ArchiveManifest manifest, std::uint64_t from_sequence = 0)
      : dir_(std::move(dir)), m_(std::move(manifest)), from_(from_sequence) {}

  // Calls `visit` for each event; `visit` returns false to stop. Throws
  // Error(corruption) at the first damage.
  template <typename Visit>
  void run(Visit visit) {
    std::string expected_chain = m_.base_chain;
    std::uint64_t expected_sequence = m_.base_sequence;
    std::string record;
    for (const auto& s : m_.segments) {
      if (s.last_sequence < from_) {
        // Not needed: the next segment starts from the chain the manifest
        // records after this one.
        expected_chain = s.chain;
        expected_sequence = s.last_sequence + 1;
        continue;
      }
      const fs::path path = dir_ / s.file;
      std::error_code ec;
      if (!fs::exists(path, ec)) damaged(s.file, "the segment is missing");
      if (fs::file_size(path, ec) != s.compressed_bytes) {
        damaged(s.file, "size differs from the manifest's " + std::to_string(s.compressed_bytes));
      }
      if (hex(archive::file_sha256(path)) != s.sha256) damaged(s.file, "SHA-256 differs from the manifest's");
      if (s.first_sequence != expected_sequence) {
        damaged(s.file, "starts at sequence " + std::to_string(s.first_sequence) + ", expected " +
                            std::to_string(expected_sequence) + " (a segment missing or out of order)");
      }
      SegmentReader reader(path, m_.max_record_bytes);
      std::uint64_t count = 0;
      std::string last_id;
      while (reader.next(record)) {
        RecordedEvent e = archive::decode_archive_record(record, s.file);
        const std::string id = e.id.to_string();
        if (e.id.sequence != expected_sequence) {
          damaged(s.file, "event " + id + " has sequence " + std::to_string(e.id.sequence) + ", expected " +
                              std::to_string(expected_sequence));
        }
        if (codec::event_checksum(e) != e.checksum) damaged(s.file, "event " + id + " fails its checksum");
        Sha256 previous{};
        if (expected_chain.size() == 64) {
          for (std::size_t i = 0; i < 32; ++i) {
            previous[i] = static_cast<unsigned char>(std::stoul(expected_chain.substr(2 * i, 2), nullptr, 16));
          }
        }
        if (hex(codec::chain_next(previous, e.checksum)) != hex(e.chain)) {
          damaged(s.file, "event " + id + ": chain does not follow the previous event's");
        }
        expected_chain = hex(e.chain);
        ++expected_sequence;
        ++count;
        ++events_;
        last_id = id;
        if (!visit(e, 4 + record.size())) return;
      }
      if (count != s.count || last_id != s.last_id || expected_chain != s.chain ||
          reader.record_bytes() != s.record_bytes) {
        damaged(s.file, "its records disagree with the manifest (count, last ID, chain or size)");
      }
    }
    if (expected_sequence - 1 != m_.last_sequence || expected_chain != m_.last_chain) {
      damaged(archive::kManifestName, "the checkpoint disagrees with the last segment");
    }
  }

  std::uint64_t events() const { return events_; }

  [[noreturn]] static void damaged(const std::string& file, const std::string& why) {
    throw Error(ErrorCode::corruption, file + ": " + why);
  }

 private:
  fs::path dir_;
  ArchiveManifest m_;
  std::uint64_t from_ = 0;
  std::uint64_t events_ = 0;
};

}  // namespace

std::string archive::verify_through(const fs::path& dir, const ArchiveManifest& manifest,
                                   std::uint64_t from_sequence, std::uint64_t to_sequence) {
  std::string chain;
  bool reached = false;
  ArchiveWalk(dir, manifest, from_sequence).run([&](const RecordedEvent& e, std::size_t) {
    if (e.id.sequence == to_sequence) {
      chain = hex(e.chain);
      reached = true;
      return false;
    }
    return true;
  });
  if (!reached) {
    throw Error(ErrorCode::invalid_argument, "archive '" + dir.string() + "' holds no event with sequence " +
                                                 std::to_string(to_sequence));
  }
  return chain;
}

std::vector<ArchiveProblem> cross_check_archive(const Store& store, const fs::path& dir) {
  const ArchiveManifest m = archive::load_manifest(dir);
  const StoreStats stats = store.stats();
  std::vector<ArchiveProblem> problems;
  const std::uint64_t base = stats.base_sequence;
  if (base > 1 && m.base_sequence == base) {
    // An archive begun after the truncation: it must chain from the anchor.
    if (m.base_chain != stats.base_chain) {
      problems.push_back({archive::kManifestName,
                          "the archive starts at the store's base but not from its chain anchor"});
    }
  } else if (base > 1) {
    if (m.last_sequence + 1 < base || m.base_sequence > base - 1) {
      problems.push_back({archive::kManifestName,
                          "the archive holds sequences " + std::to_string(m.base_sequence) + ".." +
                              std::to_string(m.last_sequence) + ", not the store's truncated event " +
                              std::to_string(base - 1)});
    } else if (archive::verify_through(dir, m, base - 1, base - 1) != stats.base_chain) {
      problems.push_back({archive::kManifestName, "event " + std::to_string(base - 1) +
                                                      " of the archive does not carry the store's chain anchor"});
    }
  }
  if (m.last_sequence >= base && m.last_sequence <= stats.last_sequence) {
    Query at;
    at.from_sequence = m.last_sequence;
    at.to_sequence = m.last_sequence;
    auto event = store.query(at).next();
    if (!event || hex(event->chain) != m.last_chain || event->id.to_string() != m.last_id) {
      problems.push_back({archive::kManifestName, "the archive's checkpoint " + m.last_id +
                                                      " is not the store's event " +
                                                      std::to_string(m.last_sequence)});
    }
  } else if (m.last_sequence > stats.last_sequence) {
    problems.push_back({archive::kManifestName, "the archive holds events past the store's last (" +
                                                    std::to_string(stats.last_sequence) + ")"});
  }
  return problems;
}

ArchiveVerifyReport verify_archive(const fs::path& dir) {
  ArchiveVerifyReport report;
  report.manifest = archive::load_manifest(dir);
  report.leftovers = leftovers(dir, report.manifest);
  ArchiveWalk walk(dir, report.manifest);
  try {
    walk.run([](const RecordedEvent&, std::size_t) { return true; });
  } catch (const Error& error) {
    std::string what = error.what();
    auto colon = what.find(": ");
    report.problems.push_back({what.substr(0, colon), colon == std::string::npos ? what : what.substr(colon + 2)});
  }
  report.events = walk.events();
  return report;
}

ImportReport import_archive(const fs::path& dir, Store& store, const ImportOptions& options) {
  const StoreStats stats = store.stats();  // read_only includes this handle's own flag
  if (stats.read_only) {
    throw Error(ErrorCode::read_only, "store '" + store.path().string() + "' is open read-only");
  }
  const ArchiveManifest manifest = archive::load_manifest(dir);
  std::string store_chain = kZeroChain;
  if (stats.last_sequence > 0) {
    Query last;
    last.from_sequence = stats.last_sequence;
    auto event = store.query(last).next();
    if (event) store_chain = hex(event->chain);
    if (stats.last_sequence > manifest.last_sequence) {
      throw Error(ErrorCode::invalid_argument,
                  "store '" + store.path().string() + "' holds events up to sequence " +
                      std::to_string(stats.last_sequence) + ", past the archive's " +
                      std::to_string(manifest.last_sequence));
    }
  }
  if (stats.last_sequence == 0 && manifest.base_sequence != 1) {
    throw Error(ErrorCode::invalid_argument, "the archive starts at sequence " +
                                                 std::to_string(manifest.base_sequence) +
                                                 ": an empty store can only take an archive from sequence 1");
  }
  // A damaged archive changes nothing: every segment up to the import's end
  // is checked (hashes, records, checksums, chain) before anything is written.
  ArchiveWalk(dir, manifest).run([&](const RecordedEvent& e, std::size_t) {
    return !(options.until && options.until < e.id);
  });

  ImportReport report;
  std::vector<RecordedEvent> chunk;
  std::size_t chunk_bytes = 0;
  bool continues = stats.last_sequence == 0;
  Progress progress(options.progress, manifest.last_sequence - stats.last_sequence);
  auto flush = [&] {
    if (chunk.empty()) return;
    store_access::import_events(store, chunk);
    report.last = chunk.back().id;
    chunk.clear();
    chunk_bytes = 0;
  };
  bool began = false;
  ArchiveWalk walk(dir, manifest);
  walk.run([&](const RecordedEvent& e, std::size_t bytes) {
    if (options.until && options.until < e.id) return false;
    if (e.id.sequence <= stats.last_sequence) {
      // Events the store has already: the archive must continue it exactly.
      if (e.id.sequence == stats.last_sequence) {
        if (hex(e.chain) != store_chain) {
          throw Error(ErrorCode::invalid_argument,
                      "the archive does not continue store '" + store.path().string() + "': event " +
                          e.id.to_string() + " has another chain than the store's last event");
        }
        continues = true;
      }
      return true;
    }
    if (!continues) {
      throw Error(ErrorCode::invalid_argument, "the archive does not continue store '" +
                                                   store.path().string() + "'");
    }
    if (!began) {
      store_access::begin_import(store);
      began = true;
    }
    chunk.push_back(e);
    chunk_bytes += bytes;
    report.record_bytes += bytes;
    ++report.events;
    progress.add(bytes);
    if (chunk.size() >= 20'000 || chunk_bytes >= (32u << 20)) {
      try {
        flush();
      } catch (const Error& error) {
        if (!report.last) {
          store_access::end_import(store);  // nothing was written: clear the mark
          throw;
        }
        throw Error(error.code(), std::string(error.what()) + " (the import stopped after event " +
                                      report.last->to_string() +
                                      "; the store holds a partial import: remove it and import again)");
      }
    }
    return true;
  });
  try {
    flush();
  } catch (...) {
    if (began && !report.last) store_access::end_import(store);  // nothing was written: clear the mark
    throw;
  }
  if (began) store_access::end_import(store);
  progress.done();
  report.seconds = progress.seconds();
  return report;
}

}  // namespace lighthouse
