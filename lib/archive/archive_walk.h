// ArchiveWalk: streams an archive's events in order, checking each as it
// goes — every segment's size and SHA-256 before it is read, record length
// bounds, records, checksums, the chain and gap-free sequences — against the
// manifest. Export's checks, import, truncation and `archive verify` all
// read archives through it.
#pragma once

#include <filesystem>
#include <string>

#include "archive/archive_record.h"
#include "archive/manifest.h"
#include "archive/segment_file.h"
#include "codec/record.h"
#include "codec/sha256.h"
#include "lighthouse/archive.h"
#include "lighthouse/error.h"

namespace lighthouse::archive {

class ArchiveWalk {
 public:
  ArchiveWalk(std::filesystem::path dir, ArchiveManifest manifest, std::uint64_t from_sequence = 0)
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
      const std::filesystem::path path = dir_ / s.file;
      std::error_code ec;
      if (!std::filesystem::exists(path, ec)) damaged(s.file, "the segment is missing");
      if (std::filesystem::file_size(path, ec) != s.compressed_bytes) {
        damaged(s.file, "size differs from the manifest's " + std::to_string(s.compressed_bytes));
      }
      if (to_hex(file_sha256(path)) != s.sha256) damaged(s.file, "SHA-256 differs from the manifest's");
      if (s.first_sequence != expected_sequence) {
        damaged(s.file, "starts at sequence " + std::to_string(s.first_sequence) + ", expected " +
                            std::to_string(expected_sequence) + " (a segment missing or out of order)");
      }
      SegmentReader reader(path, m_.max_record_bytes);
      std::uint64_t count = 0;
      std::string last_id;
      while (reader.next(record)) {
        RecordedEvent e = decode_archive_record(record, s.file);
        const std::string id = e.id.to_string();
        if (e.id.sequence != expected_sequence) {
          damaged(s.file, "event " + id + " has sequence " + std::to_string(e.id.sequence) + ", expected " +
                              std::to_string(expected_sequence));
        }
        if (e.record_format != m_.version) {
          damaged(s.file, "event " + id + " is of record format " + std::to_string(e.record_format) +
                              ", the archive's version is " + std::to_string(m_.version));
        }
        if (codec::event_checksum(e) != e.checksum) damaged(s.file, "event " + id + " fails its checksum");
        const Sha256 previous = codec::digest_from_hex(expected_chain);
        if (to_hex(codec::chain_next(previous, e.checksum)) != to_hex(e.chain)) {
          damaged(s.file, "event " + id + ": chain does not follow the previous event's");
        }
        expected_chain = to_hex(e.chain);
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
      damaged(kManifestName, "the checkpoint disagrees with the last segment");
    }
  }

  std::uint64_t events() const { return events_; }

  [[noreturn]] static void damaged(const std::string& file, const std::string& why) {
    throw Error(ErrorCode::corruption, file + ": " + why);
  }

 private:
  std::filesystem::path dir_;
  ArchiveManifest m_;
  std::uint64_t from_ = 0;
  std::uint64_t events_ = 0;
};

}  // namespace lighthouse::archive
