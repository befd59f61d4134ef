// How the tool writes its results: one compact JSON line each, invalid UTF-8
// replaced rather than thrown, and a failed write to stdout an error.
#pragma once

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

inline void print_line(std::ostream& out, const std::string& line) {
  out << line << '\n' << std::flush;
  if (!out) throw Error(ErrorCode::io_error, "cannot write to standard output");
}

}  // namespace lighthouse::tool
