#include "line_reader.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lighthouse/error.h"

namespace lighthouse::tool {
namespace {
constexpr std::size_t kReadChunk = 64 * 1024;
}

LineReader::LineReader(int fd, std::size_t max_line_bytes)
    : fd_(fd), max_line_bytes_(max_line_bytes) {}

void LineReader::check_length(std::size_t length, bool complete) const {
  if (length > max_line_bytes_) {
    throw Error(ErrorCode::limit_exceeded, std::string("line of ") + (complete ? "" : "at least ") +
                                               std::to_string(length) + " bytes: the limit is " +
                                               std::to_string(max_line_bytes_));
  }
}

std::optional<std::string_view> LineReader::next() {
  std::size_t newline = buffer_.find('\n', scan_);
  if (newline != std::string::npos) {
    check_length(newline - pos_, true);
    std::string_view line(buffer_.data() + pos_, newline - pos_);
    pos_ = scan_ = newline + 1;
    ++line_number_;
    return line;
  }
  scan_ = buffer_.size();
  check_length(buffer_.size() - pos_, eof_);
  if (eof_ && pos_ < buffer_.size()) {
    std::string_view rest(buffer_.data() + pos_, buffer_.size() - pos_);
    pos_ = scan_ = buffer_.size();
    ++line_number_;
    return rest;
  }
  return std::nullopt;
}

bool LineReader::ready() const {
  if (eof_) return true;
  pollfd p{};
  p.fd = fd_;
  p.events = POLLIN;
  for (;;) {
    int rc = ::poll(&p, 1, 0);
    if (rc >= 0) return rc > 0;
    if (errno != EINTR) {
      throw Error(ErrorCode::io_error,
                  std::string("cannot poll standard input: ") + std::strerror(errno));
    }
  }
}

void LineReader::fill() {
  if (eof_) return;
  // Drop the returned lines before growing the buffer.
  if (pos_ > 0) {
    buffer_.erase(0, pos_);
    scan_ -= pos_;
    pos_ = 0;
  }
  const std::size_t old_size = buffer_.size();
  buffer_.resize(old_size + kReadChunk);
  for (;;) {
    ssize_t n = ::read(fd_, buffer_.data() + old_size, kReadChunk);
    if (n >= 0) {
      buffer_.resize(old_size + static_cast<std::size_t>(n));
      if (n == 0) eof_ = true;
      return;
    }
    if (errno != EINTR) {
      int error = errno;
      buffer_.resize(old_size);
      throw Error(ErrorCode::io_error,
                  std::string("cannot read standard input: ") + std::strerror(error));
    }
  }
}

}  // namespace lighthouse::tool
