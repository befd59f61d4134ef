// The library's logger: spdlog's logger named "lighthouse" — the host's, if
// it registered one under that name before the first message, else one
// that writes to stderr (a library must not write into the host's stdout).
#pragma once

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>

namespace lighthouse::monitor {

inline spdlog::logger& log() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    if (auto registered = spdlog::get("lighthouse")) return registered;
    try {
      return spdlog::stderr_color_mt("lighthouse");
    } catch (const spdlog::spdlog_ex&) {  // registered meanwhile by another thread
      return spdlog::get("lighthouse");
    }
  }();
  return *logger;
}

}  // namespace lighthouse::monitor
