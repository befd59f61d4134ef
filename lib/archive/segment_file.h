// Segment files: a gzip stream (one or more members) of records, each a
// u32 big-endian length followed by the record.
#pragma once

#include <deque>
#include <filesystem>
#include <future>
#include <string>
#include <string_view>

#include "codec/sha256.h"
#include "lighthouse/event.h"

namespace lighthouse::archive {

// Writes one segment under a temporary name; compresses chunks of records
// as independent gzip members on several threads (libdeflate), in order.
class SegmentWriter {
 public:
  SegmentWriter(const std::filesystem::path& temp_path, int level, unsigned threads, unsigned file_mode = 0600);
  ~SegmentWriter();  // removes the temporary file unless finish() succeeded
  SegmentWriter(const SegmentWriter&) = delete;
  SegmentWriter& operator=(const SegmentWriter&) = delete;

  void add(std::string_view record);
  std::uint64_t record_bytes() const noexcept { return record_bytes_; }

  struct Result {
    std::uint64_t record_bytes = 0;
    std::uint64_t compressed_bytes = 0;
    Sha256 sha256{};
  };
  // Writes what is pending, syncs the file and renames it to `final_path`,
  // then syncs the directory. Errors: io_error.
  Result finish(const std::filesystem::path& final_path);

 private:
  void submit_chunk();
  void write_ready(std::size_t keep);
  void write_all(std::string_view bytes);

  std::filesystem::path temp_path_;
  int level_;
  unsigned threads_;
  int fd_ = -1;
  bool finished_ = false;
  std::string chunk_;
  std::deque<std::future<std::string>> pending_;
  std::uint64_t record_bytes_ = 0;
  std::uint64_t compressed_bytes_ = 0;
  codec::StreamingSha256 hash_;
};

// Reads the records of a segment, streaming (memory bounded by the largest
// record). Every failure is Error(corruption) naming the file: a truncated
// gzip stream, a damaged member, a length over `max_record_bytes` (refused
// before allocating), a record cut short.
class SegmentReader {
 public:
  SegmentReader(const std::filesystem::path& path, std::uint64_t max_record_bytes);
  ~SegmentReader();
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;

  // Reads the next record into `record`; returns false at the end.
  bool next(std::string& record);
  std::uint64_t record_bytes() const noexcept { return record_bytes_; }

 private:
  bool fill(std::size_t needed);  // at least `needed` bytes in out_, or the end
  [[noreturn]] void damaged(const std::string& why) const;

  std::filesystem::path path_;
  std::uint64_t max_record_bytes_;
  int fd_ = -1;
  void* stream_ = nullptr;  // z_stream
  std::string in_;
  std::string out_;
  std::size_t out_pos_ = 0;
  bool input_done_ = false;
  bool member_open_ = false;
  std::uint64_t record_bytes_ = 0;
};

// SHA-256 of a whole file, streaming. Errors: io_error.
Sha256 file_sha256(const std::filesystem::path& path);

}  // namespace lighthouse::archive
