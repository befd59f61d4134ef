// Progress of an export or import, reported to the caller's callback at
// most five times a second.
#pragma once

#include <chrono>
#include <cstdint>

#include "lighthouse/archive.h"

namespace lighthouse::archive {

class Progress {
 public:
  Progress(const ArchiveProgressCallback& callback, std::uint64_t total)
      : callback_(callback), start_(std::chrono::steady_clock::now()), last_(start_) {
    state_.total_events = total;
  }
  void add(std::uint64_t record_bytes) {
    ++state_.events;
    state_.record_bytes += record_bytes;
    if (callback_ && (state_.events & 1023) == 0) {
      auto now = std::chrono::steady_clock::now();
      if (now - last_ > std::chrono::milliseconds(200)) report(now);
    }
  }
  void done() {
    if (callback_) report(std::chrono::steady_clock::now());
  }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  void report(std::chrono::steady_clock::time_point now) {
    last_ = now;
    state_.seconds = std::chrono::duration<double>(now - start_).count();
    callback_(state_);
  }
  const ArchiveProgressCallback& callback_;
  ArchiveProgress state_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace lighthouse::archive
