#include "archive/segment_file.h"

#include <fcntl.h>
#include <libdeflate.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "files.h"
#include "lighthouse/error.h"

namespace lighthouse::archive {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kChunkBytes = 4u << 20;  // uncompressed bytes per gzip member

[[noreturn]] void io_failure(const std::string& what, const fs::path& path, int err) {
  throw Error(ErrorCode::io_error, what + " '" + path.string() + "': " + write_failure(err, path.parent_path()));
}

std::string compress_member(std::string chunk, int level) {
  std::unique_ptr<libdeflate_compressor, decltype(&libdeflate_free_compressor)> c(
      libdeflate_alloc_compressor(level), &libdeflate_free_compressor);
  if (!c) throw Error(ErrorCode::internal, "libdeflate_alloc_compressor failed");
  std::string out(libdeflate_gzip_compress_bound(c.get(), chunk.size()), '\0');
  std::size_t n = libdeflate_gzip_compress(c.get(), chunk.data(), chunk.size(), out.data(), out.size());
  if (n == 0) throw Error(ErrorCode::internal, "libdeflate_gzip_compress failed");
  out.resize(n);
  return out;
}

}  // namespace

Sha256 file_sha256(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) io_failure("cannot open", path, errno);
  codec::StreamingSha256 hash;
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      io_failure("cannot read", path, err);
    }
    if (n == 0) break;
    hash.update(std::string_view(buf.data(), static_cast<std::size_t>(n)));
  }
  ::close(fd);
  return hash.finish();
}

SegmentWriter::SegmentWriter(const fs::path& temp_path, int level, unsigned threads, unsigned file_mode)
    : temp_path_(temp_path), level_(level), threads_(threads == 0 ? 1 : threads) {
  fd_ = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, file_mode);
  if (fd_ < 0) io_failure("cannot create", temp_path, errno);
  chunk_.reserve(kChunkBytes + 1024);
}

SegmentWriter::~SegmentWriter() {
  for (auto& f : pending_) {
    if (f.valid()) f.wait();
  }
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) {
    std::error_code ec;
    fs::remove(temp_path_, ec);
  }
}

void SegmentWriter::add(std::string_view record) {
  const auto n = static_cast<std::uint32_t>(record.size());
  const char prefix[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                          static_cast<char>(n >> 8), static_cast<char>(n)};
  chunk_.append(prefix, 4);
  chunk_.append(record);
  record_bytes_ += 4 + record.size();
  if (chunk_.size() >= kChunkBytes) submit_chunk();
}

void SegmentWriter::submit_chunk() {
  if (chunk_.empty()) return;
  std::string chunk;
  chunk.swap(chunk_);
  chunk_.reserve(kChunkBytes + 1024);
  pending_.push_back(std::async(std::launch::async, compress_member, std::move(chunk), level_));
  write_ready(threads_);
}

// Writes finished members in order while more than `keep` are in flight.
void SegmentWriter::write_ready(std::size_t keep) {
  while (pending_.size() > keep) {
    std::string member = pending_.front().get();
    pending_.pop_front();
    write_all(member);
  }
}

void SegmentWriter::write_all(std::string_view bytes) {
  hash_.update(bytes);
  compressed_bytes_ += bytes.size();
  while (!bytes.empty()) {
    ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) io_failure("cannot write", temp_path_, errno);
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

SegmentWriter::Result SegmentWriter::finish(const fs::path& final_path) {
  submit_chunk();
  write_ready(0);
  if (::fsync(fd_) != 0) io_failure("cannot sync", temp_path_, errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    io_failure("cannot close", temp_path_, errno);
  }
  fd_ = -1;
  if (::rename(temp_path_.c_str(), final_path.c_str()) != 0) {
    io_failure("cannot rename", temp_path_, errno);
  }
  finished_ = true;
  sync_path(final_path.parent_path(), true);
  return {record_bytes_, compressed_bytes_, hash_.finish()};
}

SegmentReader::SegmentReader(const fs::path& path, std::uint64_t max_record_bytes)
    : path_(path), max_record_bytes_(max_record_bytes) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    if (errno == ENOENT) {
      throw Error(ErrorCode::corruption, "segment '" + path.string() + "' is missing");
    }
    io_failure("cannot open", path, errno);
  }
  auto* z = new z_stream{};
  if (inflateInit2(z, 16 + MAX_WBITS) != Z_OK) {
    delete z;
    ::close(fd_);
    throw Error(ErrorCode::internal, "inflateInit2 failed");
  }
  stream_ = z;
  member_open_ = true;
  in_.resize(1 << 20);
}

SegmentReader::~SegmentReader() {
  auto* z = static_cast<z_stream*>(stream_);
  if (z != nullptr) {
    inflateEnd(z);
    delete z;
  }
  if (fd_ >= 0) ::close(fd_);
}

void SegmentReader::damaged(const std::string& why) const {
  throw Error(ErrorCode::corruption, path_.filename().string() + ": " + why);
}

bool SegmentReader::fill(std::size_t needed) {
  auto* z = static_cast<z_stream*>(stream_);
  if (out_pos_ > 0 && out_pos_ >= out_.size() / 2) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  while (out_.size() - out_pos_ < needed) {
    if (z->avail_in == 0 && !input_done_) {
      ssize_t n;
      do {
        n = ::read(fd_, in_.data(), in_.size());
      } while (n < 0 && errno == EINTR);
      if (n < 0) io_failure("cannot read", path_, errno);
      if (n == 0) {
        input_done_ = true;
      } else {
        z->next_in = reinterpret_cast<Bytef*>(in_.data());
        z->avail_in = static_cast<uInt>(n);
      }
    }
    if (z->avail_in == 0 && input_done_) {
      if (member_open_) damaged("the gzip stream is truncated");
      return false;
    }
    if (!member_open_) {
      // More input after a member's end: another member follows.
      if (inflateReset(z) != Z_OK) damaged("cannot start the next gzip member");
      member_open_ = true;
    }
    char buf[1 << 16];
    z->next_out = reinterpret_cast<Bytef*>(buf);
    z->avail_out = sizeof buf;
    int rc = inflate(z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      damaged(std::string("gzip data error (") + (z->msg != nullptr ? z->msg : "unknown") + ")");
    }
    out_.append(buf, sizeof buf - z->avail_out);
    if (rc == Z_STREAM_END) member_open_ = false;
  }
  return true;
}

bool SegmentReader::next(std::string& record) {
  if (!fill(4)) {
    if (out_.size() != out_pos_) damaged("a length prefix is cut short");
    return false;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(out_.data() + out_pos_);
  const std::uint64_t n = (std::uint64_t{p[0]} << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
  if (n > max_record_bytes_) {
    damaged("a record of " + std::to_string(n) + " bytes is over the manifest's maximum of " +
            std::to_string(max_record_bytes_));
  }
  if (!fill(4 + n)) damaged("the last record is cut short");
  record.assign(out_.data() + out_pos_ + 4, n);
  out_pos_ += 4 + n;
  record_bytes_ += 4 + n;
  return true;
}

}  // namespace lighthouse::archive
