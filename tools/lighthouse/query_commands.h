// `lighthouse query` and `lighthouse read`: JSON lines in the `get` format.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "lighthouse/query.h"

namespace lighthouse::tool {

// The filter options `query` and `tail` share.
struct FilterArguments {
  std::vector<std::string> types;
  std::string type_prefix;
  std::optional<std::string> aggregate;
  // A query with these filters and nothing else.
  Query query() const;
};

// The query options as typed; parsed strictly (a malformed ID, time or number
// is Error(invalid_argument), exit code 4).
struct QueryArguments {
  FilterArguments filter;
  std::string after, before, from_sequence, to_sequence, since, until, limit;
  bool reverse = false;
  bool explain = false;
  bool no_verify = false;
  std::string read_check;  // empty: the store's default (fast)
};

void run_query(const std::string& path, const QueryArguments& args, std::ostream& out);

// `lighthouse tail`: follows the store (lighthouse::Store::subscribe).
struct TailArguments {
  FilterArguments filter;
  std::string after, from_sequence, since;
  bool from_start = false;
  bool follow = false;
  std::string consumer;
};

// Prints JSON lines in the `get` format until caught up, or with `follow`
// until SIGINT or SIGTERM (then exits 0, its checkpoint stored).
void run_tail(const std::string& path, const TailArguments& args, std::ostream& out);

void run_read(const std::string& path, const std::string& aggregate,
              const std::string& from_version, const std::string& to_version, std::ostream& out);

}  // namespace lighthouse::tool
