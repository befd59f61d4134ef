// The query-string parameters of a request to `lighthouse serve`, and the
// percent-decoding and UTF-8 check of its target.
#pragma once

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lighthouse/error.h"
#include "parse.h"
#include "serve/api.h"

namespace lighthouse::serve {

using tool::shown;  // a text from the request, cut for an error message

inline std::optional<std::string> header(const Request& r, const std::string& name) {
  auto it = r.headers.find(name);
  if (it == r.headers.end()) return std::nullopt;
  return it->second;
}

// Percent-decoding; `plus_is_space` for query strings. False on a bad escape.
inline bool percent_decode(std::string_view in, bool plus_is_space, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = tool::hex_digit(in[i + 1]), lo = tool::hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (plus_is_space && in[i] == '+') {
      out += ' ';
    } else {
      out += in[i];
    }
  }
  return true;
}

inline bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    if (n == 2 && c < 0xc2) return false;
    i += n;
  }
  return true;
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
