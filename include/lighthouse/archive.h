// The archive: events exported as length-prefixed MessagePack records in
// gzip segment files with a JSON manifest (docs/archive-format.md), for
// archival and for moving events between machines. A segment is readable by
// stock tools: zcat and any MessagePack library.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lighthouse/event_id.h"
#include "lighthouse/export.h"

namespace lighthouse {

class Store;

// Reported during long runs (export, import), at most a few times a second.
struct ArchiveProgress {
  std::uint64_t events = 0;        // done so far
  std::uint64_t total_events = 0;  // to do in all (0 when unknown)
  std::uint64_t record_bytes = 0;  // uncompressed record bytes done so far
  double seconds = 0;
};
using ArchiveProgressCallback = std::function<void(const ArchiveProgress&)>;

struct ExportOptions {
  // A new segment starts when the next record would take the current one
  // past this many uncompressed record bytes (default 100 MiB). A record is
  // never split.
  std::uint64_t segment_bytes = 100ull << 20;
  int level = 6;           // gzip compression level, 1..12 (libdeflate)
  unsigned threads = 0;    // compressing threads; 0: one per core
  // Permissions of the segment and manifest files, and (plus x where r is
  // set) of the archive directory if the export creates it. Owner-only by default.
  unsigned file_mode = 0600;
  ArchiveProgressCallback progress;
};

struct ExportReport {
  std::uint64_t events = 0;
  std::uint64_t segments = 0;           // segments written by this run
  std::uint64_t record_bytes = 0;       // uncompressed, with length prefixes
  std::uint64_t compressed_bytes = 0;
  std::vector<std::string> removed_leftovers;  // files of an interrupted run, removed
  double seconds = 0;
};

// Exports every event after the archive's checkpoint (all of them for a new
// archive) into new segments, then replaces the manifest. Crash-safe: each
// segment is written under a temporary name, synced, renamed and the
// directory synced before the manifest — replaced the same way — names it; a
// run killed at any point leaves an archive that verifies. Written segments
// never change. Errors: invalid_argument (bad options, an archive of another
// store, a manifest that does not verify), io_error (an unwritable
// directory, a full disk — the archive stays as it was), closed.
LIGHTHOUSE_API ExportReport export_archive(const Store& store, const std::filesystem::path& dir,
                                           const ExportOptions& options = {});

struct ImportOptions {
  std::optional<EventId> until;  // import events up to this ID, inclusive
  ArchiveProgressCallback progress;
};

struct ImportReport {
  std::uint64_t events = 0;
  std::uint64_t record_bytes = 0;
  std::optional<EventId> last;  // the last event imported
  double seconds = 0;
};

// Rebuilds a store from an archive: identical IDs, checksums, chain values
// and indexes. Into a store that holds events only when the archive
// continues it exactly (next sequence and chain); the events the store has
// already are skipped. An archive of version 1 (record format 1) imports
// only into an empty store, each event's checksum and chain recomputed in
// format 2 (as `upgrade` does). The archive is checked in full (up to `until`) —
// file hashes, length bounds, checksums, chain, sequences — before anything
// is written, so a damaged archive changes nothing; an import interrupted
// while writing leaves a store that refuses to open with a message saying
// so. Errors: invalid_argument (the archive does not continue the store),
// corruption (the archive is damaged), read_only, io_error.
LIGHTHOUSE_API ImportReport import_archive(const std::filesystem::path& dir, Store& store,
                                           const ImportOptions& options = {});

struct ArchiveSegment {
  std::string file;
  std::string first_id, last_id;
  std::uint64_t first_sequence = 0, last_sequence = 0, count = 0;
  std::uint64_t record_bytes = 0, compressed_bytes = 0;
  std::string sha256;  // of the file, hex
  std::string chain;   // after its last event, hex
};

struct ArchiveManifest {
  // The archive's version, and the record format of all its records: 2, or
  // 1 for an archive of a format-1 store (which still verifies, imports into
  // an empty store and serves `truncate --archive`).
  std::uint32_t version = 2;
  std::uint64_t segment_bytes = 0;
  std::uint64_t max_record_bytes = 0;
  std::uint32_t node_id = 0;  // of the store exported
  std::string base_chain;     // the chain the first event follows, hex
  std::uint64_t base_sequence = 1;
  std::vector<ArchiveSegment> segments;
  // The checkpoint: the last event exported (empty for an empty archive).
  std::string last_id;
  std::uint64_t last_sequence = 0;
  std::string last_chain;
};

struct ArchiveProblem {
  std::string file;  // the segment or manifest
  std::string detail;
};

struct ArchiveVerifyReport {
  ArchiveManifest manifest;
  std::uint64_t events = 0;
  std::vector<ArchiveProblem> problems;     // failures
  std::vector<std::string> leftovers;       // warnings: files of an interrupted export
  // Returns true iff no problem was found (leftovers are only warnings).
  bool ok() const noexcept { return problems.empty(); }
};

// Checks an archive offline: every file's hash and size, every record's
// length bound and checksum, the chain across segments, sequences gap-free,
// and the manifest against the files. Problems are reported, not thrown.
// Errors: not_found (no manifest), corruption (a manifest that does not
// parse), io_error.
LIGHTHOUSE_API ArchiveVerifyReport verify_archive(const std::filesystem::path& dir);

// Checks that an archive and a store form one unbroken chain: after
// truncation, the archive's event just before the store's base carries the
// store's chain anchor; where both hold an event, they hold the same one; and
// there is no gap between the archive's last event and the store's first.
// Returns the problems found (none when they agree). Errors: not_found,
// corruption (the archive does not verify where it is read), closed.
LIGHTHOUSE_API std::vector<ArchiveProblem> cross_check_archive(const Store& store,
                                                               const std::filesystem::path& dir);

// Reads the manifest. Errors: not_found, corruption (not a valid manifest).
LIGHTHOUSE_API ArchiveManifest read_manifest(const std::filesystem::path& dir);

}  // namespace lighthouse
