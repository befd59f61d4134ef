// The command line of the store family: init, append, get, stats, read,
// query and tail.
#include <unistd.h>

#include <iostream>

#include "append_command.h"
#include "cli.h"
#include "query_commands.h"
#include "store_commands.h"

namespace lighthouse::tool {
namespace {

struct Arguments {
  std::string store, node_id, event_id, priority = "normal", aggregate, from_version, to_version;
  bool atomic = false;
  QueryArguments query;
  TailArguments tail;
};

void add_init_append(CLI::App& app, Commands& commands, const std::shared_ptr<Arguments>& a) {
  const CLI::Validator node_id_check(
      [](std::string& text) {
        return parse_node_id(text) ? std::string() : "node id '" + text + "' is not a decimal from 0 to 4294967295";
      },
      "UINT32");
  CLI::App* init = app.add_subcommand("init", "Create a store; prints {store, node_id, format_version}");
  add_store_argument(*init, a->store);
  init->add_option("--node-id", a->node_id, "Node id written into event IDs (default: random)")->check(node_id_check);
  commands.push_back({init, succeeds([a] {
                        std::optional<std::uint32_t> node_id;
                        if (!a->node_id.empty()) node_id = parse_node_id(a->node_id);
                        run_init(a->store, node_id, std::cout);
                      })});

  CLI::App* append = app.add_subcommand(
      "append", "Append JSON lines read from stdin; prints {id, sequence, aggregate_version} per event");
  add_store_argument(*append, a->store);
  append->add_flag("--batch", a->atomic, "Append all of stdin atomically, in one transaction");
  add_structure_check(*append);
  append
      ->add_option("--priority", a->priority,
                   "low, normal, high or critical: a degraded store refuses appends below the priority it admits "
                   "(exit code 6)")
      ->check(CLI::IsMember({"low", "normal", "high", "critical"}));
  commands.push_back({append, succeeds([a] {
                        Store store = open_existing(a->store, false);
                        run_append(store, STDIN_FILENO, std::cout, a->atomic,
                                   parse_priority(a->priority).value_or(Priority::normal));
                      })});
}

void add_get_stats_read(CLI::App& app, Commands& commands, const std::shared_ptr<Arguments>& a) {
  CLI::App* get = app.add_subcommand("get", "Print one event as JSON");
  add_store_argument(*get, a->store);
  get->add_option("ID", a->event_id, "Event ID: {timestamp_ns}_{sequence}_{node_id}")->required();
  commands.push_back({get, succeeds([a] { run_get(a->store, a->event_id, std::cout); })});

  CLI::App* stats = app.add_subcommand("stats", "Print the store's statistics as JSON");
  add_store_argument(*stats, a->store);
  commands.push_back({stats, succeeds([a] { run_stats(a->store, std::cout); })});

  CLI::App* read = app.add_subcommand("read", "Print an aggregate's stream in version order");
  add_store_argument(*read, a->store);
  read->add_option("AGGREGATE", a->aggregate, "Aggregate id")->required();
  read->add_option("--from-version", a->from_version, "First version (inclusive; default 1)");
  read->add_option("--to-version", a->to_version, "Last version (inclusive; default: the last)");
  commands.push_back(
      {read, succeeds([a] { run_read(a->store, a->aggregate, a->from_version, a->to_version, std::cout); })});
}

void add_query(CLI::App& app, Commands& commands, const std::shared_ptr<Arguments>& a) {
  QueryArguments& q = a->query;
  CLI::App* query =
      app.add_subcommand("query", "Print the events a query selects, one JSON line each (the `get` format)");
  add_store_argument(*query, a->store);
  add_filter_options(*query, q.filter);
  query->add_option("--after", q.after, "Events after this ID (exclusive)");
  query->add_option("--before", q.before, "Events before this ID (exclusive)");
  query->add_option("--from-sequence", q.from_sequence, "Events from this sequence on (inclusive)");
  query->add_option("--to-sequence", q.to_sequence, "Events up to this sequence (inclusive)");
  query->add_option("--since", q.since, "Events at or after TIME (inclusive): RFC 3339 or integer nanoseconds");
  query->add_option("--until", q.until, "Events before TIME (exclusive): RFC 3339 or integer nanoseconds");
  query->add_option("--limit", q.limit, "At most N events (with --reverse: the newest N); 0: no limit");
  query->add_flag("--reverse", q.reverse, "Newest first");
  query->add_flag("--explain", q.explain, "Print the plan (index and estimate) instead of the events");
  query->add_option("--read-check", q.read_check,
                    "What each event read is checked by: fast (its 64-bit check, the default), full (also its "
                    "SHA-256 checksum) or off")
      ->check(CLI::IsMember({"off", "fast", "full"}));
  query->add_flag("--no-verify", q.no_verify, "Check nothing (--read-check off)");
  footer_with_exit_codes(*query,
                         "Filters combine with AND. An ID that is well formed but not stored is a valid bound.\n"
                         "--limit 0 means no limit. A malformed ID, time or number is exit code 4.");
  commands.push_back({query, succeeds([a] { run_query(a->store, a->query, std::cout); })});
}

void add_tail(CLI::App& app, Commands& commands, const std::shared_ptr<Arguments>& a) {
  TailArguments& t = a->tail;
  CLI::App* tail = app.add_subcommand(
      "tail", "Follow the store: print events as JSON lines (the `get` format) until caught up, or live");
  add_store_argument(*tail, a->store);
  add_filter_options(*tail, t.filter);
  // The start options exclude each other: giving two is the command line's
  // shape (exit code 2), like every other excluded combination.
  exclude_each_other({tail->add_option("--after", t.after, "Start after this ID"),
                      tail->add_option("--from-sequence", t.from_sequence, "Start at this sequence"),
                      tail->add_option("--since", t.since, "Start at TIME: RFC 3339 or integer nanoseconds"),
                      tail->add_flag("--from-start", t.from_start, "Start at the first event (the default)")});
  tail->add_flag("--follow", t.follow, "Keep printing what any process appends, until SIGINT or SIGTERM");
  add_structure_check(*tail);
  tail->add_option("--consumer", t.consumer,
                   "Store a checkpoint under NAME: the next run continues after it (the start options apply to "
                   "the first run only)");
  footer_with_exit_codes(*tail,
                         "Without --follow it stops once caught up. Delivery is at least once: a run killed before "
                         "its checkpoint is stored prints some events again next time.");
  commands.push_back({tail, succeeds([a] { run_tail(a->store, a->tail, std::cout); })});
}

}  // namespace

void add_store_commands(CLI::App& app, Commands& commands) {
  auto a = std::make_shared<Arguments>();
  add_init_append(app, commands, a);
  add_get_stats_read(app, commands, a);
  add_query(app, commands, a);
  add_tail(app, commands, a);
}

}  // namespace lighthouse::tool
