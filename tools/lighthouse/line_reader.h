// Reads '\n'-terminated lines from a file descriptor with read(2), and says
// whether more input is available right now — so that a streaming command
// can act on what it has before it blocks waiting for a slow producer.
//
// Not thread-safe. The reader owns its buffer; it does not own the fd.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace lighthouse::tool {

class LineReader {
 public:
  // A line longer than `max_line_bytes` (without its '\n') is an error.
  LineReader(int fd, std::size_t max_line_bytes);

  // Returns the next line, without its '\n', if it is already buffered — or,
  // once the input has ended, the unterminated rest. Reads nothing. The view
  // stays valid until the next call of fill().
  // Throws Error(limit_exceeded) when the line is over the limit; the line
  // is then number line_number() + 1.
  std::optional<std::string_view> next();

  // The 1-based number of the line next() returned last (0 before the first).
  std::size_t line_number() const noexcept { return line_number_; }

  // Returns true iff the input has ended and every line was returned.
  bool done() const noexcept { return eof_ && pos_ == buffer_.size(); }

  // Returns true iff a read would not block now (input or end of input).
  bool ready() const;

  // Reads once, blocking until some input arrives or the input ends.
  // Throws Error(io_error) when read(2) fails.
  void fill();

 private:
  void check_length(std::size_t length, bool complete) const;

  int fd_;
  std::size_t max_line_bytes_;
  std::string buffer_;
  std::size_t pos_ = 0;   // start of the first unreturned line
  std::size_t scan_ = 0;  // everything in [pos_, scan_) holds no '\n'
  bool eof_ = false;
  std::size_t line_number_ = 0;
};

}  // namespace lighthouse::tool
