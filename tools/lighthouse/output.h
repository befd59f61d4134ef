// How the tool writes its results: one compact JSON line each, invalid UTF-8
// replaced rather than thrown, and a failed write to stdout an error.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "lighthouse/error.h"

namespace lighthouse::tool {

// Ordered, so that objects keep the order their writer gave them.
using Json = nlohmann::ordered_json;

inline std::string dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Throughput of `bytes` in `seconds`, for the reports of export, import and backup.
inline double mb_per_second(std::uint64_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0.0;
}

inline void print_line(std::ostream& out, const std::string& line) {
  out << line << '\n' << std::flush;
  if (!out) throw Error(ErrorCode::io_error, "cannot write to standard output");
}

}  // namespace lighthouse::tool
