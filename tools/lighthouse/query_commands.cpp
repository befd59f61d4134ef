#include "query_commands.h"
#include "output.h"

#include <signal.h>

#include <unistd.h>

#include <atomic>
#include <thread>
#include <iostream>
#include <nlohmann/json.hpp>

#include "json_event.h"
#include "parse.h"
#include "lighthouse/query.h"
#include "lighthouse/store.h"
#include "lighthouse/time.h"
#include "store_commands.h"

namespace lighthouse::tool {
namespace {

// An option's number; nothing when the option was not given.
std::optional<std::uint64_t> parse_number(const std::string& option, const std::string& text) {
  if (text.empty()) return std::nullopt;
  return parse_decimal(option, text);
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

Query FilterArguments::query() const {
  Query q;
  q.types = types;
  q.type_prefix = type_prefix;
  q.aggregate = aggregate;
  return q;
}

void run_query(const std::string& path, const QueryArguments& args, std::ostream& out) {
  Query q = args.filter.query();
  if (!args.after.empty()) q.after_id = EventId::parse(args.after);
  if (!args.before.empty()) q.before_id = EventId::parse(args.before);
  q.from_sequence = parse_number("--from-sequence", args.from_sequence);
  q.to_sequence = parse_number("--to-sequence", args.to_sequence);
  if (!args.since.empty()) q.since_ns = parse_time(args.since);
  if (!args.until.empty()) q.until_ns = parse_time(args.until);
  q.limit = parse_number("--limit", args.limit).value_or(0);
  q.direction = args.reverse ? Direction::reverse : Direction::forward;
  if (!args.read_check.empty()) q.verify_on_read = parse_read_check(args.read_check);
  if (args.no_verify) q.verify_on_read = ReadCheck::off;

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

void run_tail(const std::string& path, const TailArguments& args, std::ostream& out) {
  // The start options exclude each other (the parser refuses two of them).
  // Parsed before the store is opened: a malformed start writes nothing.
  SubscriptionStart start = SubscriptionStart::beginning();
  if (!args.after.empty()) start = SubscriptionStart::after(EventId::parse(args.after));
  if (auto n = parse_number("--from-sequence", args.from_sequence)) start = SubscriptionStart::from_sequence(*n);
  if (!args.since.empty()) start = SubscriptionStart::since(parse_time(args.since));
  const Query filter = args.filter.query();
  SubscribeOptions options;
  options.consumer = args.consumer;
  options.stop_when_caught_up = !args.follow;
  // With --follow the subscription runs until a signal: block them before
  // any thread starts (the store's threads inherit the mask) and wait for
  // one below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  if (args.follow) pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A consumer stores its checkpoint, so it needs the store writable.
  Store store = open_existing(path, args.consumer.empty());
  Subscription subscription = store.subscribe(
      filter, start,
      [&out](const RecordedEvent& event) {
        out << recorded_event_json(event) << '\n' << std::flush;
        if (!out) throw Error(ErrorCode::io_error, "cannot write to standard output");
      },
      options);
  if (args.follow) {
    // Until a signal, or until the subscription stops by itself (an error).
    std::atomic<bool> interrupted{false};
    const pthread_t main_thread = pthread_self();
    std::thread watcher([&subscription, &interrupted, main_thread] {
      try {
        subscription.wait();
      } catch (...) {
      }
      if (!interrupted) pthread_kill(main_thread, SIGTERM);  // ends the sigwait below
    });
    int received = 0;
    sigwait(&signals, &received);
    interrupted = true;
    subscription.cancel();
    watcher.join();
  }
  subscription.wait();  // rethrows what stopped it
}

}  // namespace lighthouse::tool
