// The query-string parameters of a request to `lighthouse serve`.
#pragma once

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lighthouse/error.h"
#include "serve/api.h"

namespace lighthouse::serve {

// A text from the request, cut for an error message.
inline std::string shown(std::string_view text) {
  std::string out(text.substr(0, 64));
  return out.size() < text.size() ? out + "..." : out;
}

inline std::optional<std::string> header(const Request& r, const std::string& name) {
  auto it = r.headers.find(name);
  if (it == r.headers.end()) return std::nullopt;
  return it->second;
}

// The parameters of a request's query string, each known and given once
// (but `type`, which may repeat).
class Parameters {
 public:
  Parameters(const Request& r, std::initializer_list<const char*> known) {
    for (const auto& [name, value] : r.query) {
      bool ok = false;
      for (const char* k : known) ok = ok || name == k;
      if (!ok) throw Error(ErrorCode::invalid_argument, "unknown parameter '" + shown(name) + "'");
      if (name != "type" && values_.count(name) != 0) throw Error(ErrorCode::invalid_argument, "parameter '" + shown(name) + "' given twice");
      values_.emplace(name, value);
    }
  }
  std::optional<std::string> get(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::string> all(const std::string& name) const {
    std::vector<std::string> out;
    for (auto [it, end] = values_.equal_range(name); it != end; ++it) out.push_back(it->second);
    return out;
  }

 private:
  std::multimap<std::string, std::string> values_;
};

}  // namespace lighthouse::serve
