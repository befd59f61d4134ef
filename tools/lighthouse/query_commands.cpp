#include "query_commands.h"
#include "output.h"

#include <charconv>
#include <iostream>
#include <nlohmann/json.hpp>

#include "json_event.h"
#include "lighthouse/query.h"
#include "lighthouse/store.h"
#include "lighthouse/time.h"
#include "store_commands.h"

namespace lighthouse::tool {
namespace {

std::optional<std::uint64_t> parse_number(const std::string& option, const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || (text.size() > 1 && text[0] == '0')) {
    throw Error(ErrorCode::invalid_argument, option + " '" + text.substr(0, 64) +
                                                 "' is not an unsigned decimal number");
  }
  return value;
}

// Writes each event as it comes, so memory stays bounded. A result that
// reaches below the store's base is said so on stderr.
void print_events(EventCursor& cursor, std::ostream& out) {
  if (const auto& t = cursor.truncation()) {
    std::cerr << "lighthouse: warning: events before sequence " << t->base_sequence
              << " were truncated; they are in archive '" << t->archive << "'\n";
  }
  for (const RecordedEvent& event : cursor) {
    out << recorded_event_json(event) << '\n';
    if (!out) throw Error(ErrorCode::io_error, "cannot write to standard output");
  }
  out << std::flush;
  if (!out) throw Error(ErrorCode::io_error, "cannot write to standard output");
}

}  // namespace

void run_query(const std::string& path, const QueryArguments& args, std::ostream& out) {
  Query q;
  q.types = args.types;
  q.type_prefix = args.type_prefix;
  q.aggregate = args.aggregate;
  if (!args.after.empty()) q.after_id = EventId::parse(args.after);
  if (!args.before.empty()) q.before_id = EventId::parse(args.before);
  q.from_sequence = parse_number("--from-sequence", args.from_sequence);
  q.to_sequence = parse_number("--to-sequence", args.to_sequence);
  if (!args.since.empty()) q.since_ns = parse_time(args.since);
  if (!args.until.empty()) q.until_ns = parse_time(args.until);
  q.limit = parse_number("--limit", args.limit).value_or(0);
  q.direction = args.reverse ? Direction::reverse : Direction::forward;
  if (args.no_verify) q.verify_checksums = false;

  Store store = open_existing(path, true);
  if (args.explain) {
    QueryPlan plan = store.explain(q);
    Json line;
    line["source"] = std::string(to_string(plan.source));
    line["estimate"] = plan.estimate;
    line["description"] = plan.description;
    print_line(out, dump(line));
    return;
  }
  EventCursor cursor = store.query(q);
  print_events(cursor, out);
}

void run_read(const std::string& path, const std::string& aggregate,
              const std::string& from_version, const std::string& to_version, std::ostream& out) {
  std::uint64_t from = parse_number("--from-version", from_version).value_or(1);
  std::uint64_t to = parse_number("--to-version", to_version).value_or(0);
  Store store = open_existing(path, true);
  EventCursor cursor = store.read_aggregate(aggregate, from, to);
  print_events(cursor, out);
}

}  // namespace lighthouse::tool
