// lighthouse — the command-line tool: CLI wiring and exit codes. Results go
// to stdout, one JSON line each; errors go to stderr as "lighthouse: ...".
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "append_command.h"
#include "archive_commands.h"
#include "integrity_commands.h"
#include "query_commands.h"
#include "exit_codes.h"
#include "lighthouse/error.h"
#include "lighthouse/version.h"
#include "store_commands.h"

namespace {

using namespace lighthouse::tool;

std::optional<std::uint32_t> parse_node_id(const std::string& text) {
  std::uint32_t value = 0;
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The shape of the command line (an unknown command or option, a missing
// argument, options that exclude each other) is a usage error; a value the
// parser refuses (empty, not a number, out of range, not one of the choices)
// is invalid input, like a malformed ID or time found later.
int report_usage_error(CLI::App& app, const CLI::ParseError& error) {
  if (error.get_exit_code() == 0) return app.exit(error);  // --help, --version
  std::cerr << "lighthouse: " << error.what() << "\nRun with --help for more information.\n";
  const bool bad_value = dynamic_cast<const CLI::ValidationError*>(&error) != nullptr ||
                         dynamic_cast<const CLI::ConversionError*>(&error) != nullptr;
  return bad_value ? kExitInvalidInput : kExitUsage;
}

void add_filter_options(CLI::App& command, FilterArguments& filter) {
  command.add_option("--type", filter.types, "Events of this type (repeat for several)");
  command.add_option("--type-prefix", filter.type_prefix, "Events whose type starts with this");
  command.add_option("--aggregate", filter.aggregate, "Events of this aggregate");
}

// Options of which at most one may be given (two are a usage error).
void exclude_each_other(const std::vector<CLI::Option*>& options) {
  for (CLI::Option* a : options) {
    for (CLI::Option* b : options) {
      if (a != b) a->excludes(b);
    }
  }
}

// A subcommand's own footer replaces the tool's: keep the exit codes under it.
void footer_with_exit_codes(CLI::App& command, const std::string& text) {
  command.footer(text + "\n\n" + exit_code_table());
}

// No option or argument of the tool means anything when empty: an empty
// value (an unset shell variable) is refused rather than read as "not given".
void refuse_empty_values(CLI::App& command) {
  static const CLI::Validator not_empty(
      [](std::string& value) { return value.empty() ? std::string("an empty value is not allowed") : std::string(); },
      "");
  for (CLI::Option* option : command.get_options()) {
    if (option->get_type_size_max() != 0) option->check(not_empty);
  }
  for (CLI::App* sub : command.get_subcommands({})) refuse_empty_values(*sub);
}

}  // namespace

int main(int argc, char** argv) {
  // A closed stdout should be an error we report, not a signal that kills us.
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app("Lighthouse: an embedded, transactional event store.", "lighthouse");
  app.footer(exit_code_table());
  app.set_version_flag("--version", LIGHTHOUSE_VERSION);
  app.require_subcommand(1);

  std::string store_path;
  std::string node_id_text;
  std::string event_id;
  bool atomic = false;

  CLI::Validator node_id_check(
      [](std::string& text) {
        return parse_node_id(text) ? std::string()
                                   : "node id '" + text + "' is not a decimal from 0 to 4294967295";
      },
      "UINT32");

  CLI::App* init =
      app.add_subcommand("init", "Create a store; prints {store, node_id, format_version}");
  init->add_option("STORE", store_path, "Store directory")->required();
  init->add_option("--node-id", node_id_text, "Node id written into event IDs (default: random)")
      ->check(node_id_check);

  CLI::App* append = app.add_subcommand(
      "append",
      "Append JSON lines read from stdin; prints {id, sequence, aggregate_version} per event");
  append->add_option("STORE", store_path, "Store directory")->required();
  append->add_flag("--batch", atomic, "Append all of stdin atomically, in one transaction");
  std::string priority_text = "normal";
  append->add_option("--priority", priority_text,
                     "low, normal, high or critical: a degraded store refuses appends below the "
                     "priority it admits (exit code 6)")
      ->check(CLI::IsMember({"low", "normal", "high", "critical"}));

  CLI::App* get = app.add_subcommand("get", "Print one event as JSON");
  get->add_option("STORE", store_path, "Store directory")->required();
  get->add_option("ID", event_id, "Event ID: {timestamp_ns}_{sequence}_{node_id}")->required();

  CLI::App* stats = app.add_subcommand("stats", "Print the store's statistics as JSON");
  stats->add_option("STORE", store_path, "Store directory")->required();

  QueryArguments query_args;
  CLI::App* query = app.add_subcommand(
      "query", "Print the events a query selects, one JSON line each (the `get` format)");
  query->add_option("STORE", store_path, "Store directory")->required();
  add_filter_options(*query, query_args.filter);
  query->add_option("--after", query_args.after, "Events after this ID (exclusive)");
  query->add_option("--before", query_args.before, "Events before this ID (exclusive)");
  query->add_option("--from-sequence", query_args.from_sequence,
                    "Events from this sequence on (inclusive)");
  query->add_option("--to-sequence", query_args.to_sequence,
                    "Events up to this sequence (inclusive)");
  query->add_option("--since", query_args.since,
                    "Events at or after TIME (inclusive): RFC 3339 or integer nanoseconds");
  query->add_option("--until", query_args.until,
                    "Events before TIME (exclusive): RFC 3339 or integer nanoseconds");
  query->add_option("--limit", query_args.limit,
                    "At most N events (with --reverse: the newest N); 0: no limit");
  query->add_flag("--reverse", query_args.reverse, "Newest first");
  query->add_flag("--explain", query_args.explain,
                  "Print the plan (index and estimate) instead of the events");
  query->add_flag("--no-verify", query_args.no_verify, "Do not verify checksums");
  footer_with_exit_codes(
      *query,
      "Filters combine with AND. An ID that is well formed but not stored is a valid bound.\n"
      "--limit 0 means no limit. A malformed ID, time or number is exit code 4.");

  TailArguments tail_args;
  CLI::App* tail = app.add_subcommand(
      "tail", "Follow the store: print events as JSON lines (the `get` format) until caught up, or live");
  tail->add_option("STORE", store_path, "Store directory")->required();
  add_filter_options(*tail, tail_args.filter);
  // The start options exclude each other: giving two is the command line's
  // shape (exit code 2), like every other excluded combination.
  exclude_each_other({
      tail->add_option("--after", tail_args.after, "Start after this ID"),
      tail->add_option("--from-sequence", tail_args.from_sequence, "Start at this sequence"),
      tail->add_option("--since", tail_args.since, "Start at TIME: RFC 3339 or integer nanoseconds"),
      tail->add_flag("--from-start", tail_args.from_start, "Start at the first event (the default)")});
  tail->add_flag("--follow", tail_args.follow,
                 "Keep printing what any process appends, until SIGINT or SIGTERM");
  tail->add_option("--consumer", tail_args.consumer,
                   "Store a checkpoint under NAME: the next run continues after it (the start "
                   "options apply to the first run only)");
  footer_with_exit_codes(*tail,
                         "Without --follow it stops once caught up. Delivery is at least once: a run "
                         "killed before its checkpoint is stored prints some events again next time.");

  bool verify_json = false;
  CLI::App* verify = app.add_subcommand(
      "verify", "Check every checksum, the chain, sequences, versions, indexes and counters");
  verify->add_option("STORE", store_path, "Store directory")->required();
  verify->add_flag("--json", verify_json, "Print the report as one JSON object");
  std::string verify_archive_dir;
  verify->add_option("--archive", verify_archive_dir,
                     "Also verify this archive and that archive plus store form one unbroken chain");
  footer_with_exit_codes(*verify, "Exit code 0 when the store is clean, 5 when anything is wrong. Never writes.");

  CLI::App* repair = app.add_subcommand(
      "repair", "Rebuild the indexes and counters from the events (never drops an event)");
  repair->add_option("STORE", store_path, "Store directory")->required();

  std::string backup_destination;
  CLI::App* backup = app.add_subcommand(
      "backup", "Write a consistent, compacted, verified copy while writers keep writing");
  backup->add_option("STORE", store_path, "Store directory")->required();
  backup->add_option("DEST", backup_destination, "A new or empty directory")->required();

  std::string archive_dir, until_id;
  std::uint64_t segment_bytes = 100ull << 20;
  int level = 6;
  CLI::App* export_cmd = app.add_subcommand(
      "export", "Export new events into gzip segment files with a manifest (incremental)");
  export_cmd->add_option("STORE", store_path, "Store directory")->required();
  export_cmd->add_option("ARCHIVE_DIR", archive_dir, "Archive directory (created if missing)")->required();
  export_cmd->add_option("--segment-size", segment_bytes,
                         "Uncompressed bytes per segment before a new one starts (default 104857600)")
      ->check(CLI::Range(std::uint64_t{1024}, std::uint64_t{1} << 40));
  export_cmd->add_option("--level", level, "gzip level 1..12 (default 6)")->check(CLI::Range(1, 12));

  CLI::App* import_cmd = app.add_subcommand("import", "Rebuild a store from an archive");
  import_cmd->add_option("ARCHIVE_DIR", archive_dir, "Archive directory")->required();
  import_cmd->add_option("STORE", store_path, "Store directory (created if missing)")->required();
  import_cmd->add_option("--until", until_id, "Import events up to this ID (inclusive)");

  CLI::App* archive_cmd = app.add_subcommand("archive", "Inspect an archive");
  archive_cmd->require_subcommand(1);
  CLI::App* archive_verify = archive_cmd->add_subcommand(
      "verify", "Check every file hash, record checksum, the chain and the manifest (offline)");
  archive_verify->add_option("ARCHIVE_DIR", archive_dir, "Archive directory")->required();
  CLI::App* archive_list = archive_cmd->add_subcommand("list", "Print the manifest's segments as JSON lines");
  archive_list->add_option("ARCHIVE_DIR", archive_dir, "Archive directory")->required();

  CLI::App* sla = app.add_subcommand(
      "sla", "Print the SLA report the writing process last persisted, with its age and pid");
  sla->add_option("STORE", store_path, "Store directory")->required();
  std::string emergency_reason;
  bool clear_emergency = false;
  CLI::App* health = app.add_subcommand(
      "health", "Print the store's health state, its reason and since when; or enter / clear a manual emergency");
  health->add_option("STORE", store_path, "Store directory")->required();
  auto* enter_opt = health->add_option("--enter-emergency", emergency_reason,
                                       "Enter a manual emergency for every process: appends are refused "
                                       "until --clear-emergency");
  auto* clear_opt = health->add_flag("--clear-emergency", clear_emergency, "End a manual emergency");
  exclude_each_other({enter_opt, clear_opt});
  footer_with_exit_codes(*health,
                         "States: healthy, warning, degraded (low-priority appends are shed), emergency "
                         "(appends refused). Without options it opens the store read-only and never writes.");
  CLI::App* metrics = app.add_subcommand(
      "metrics", "Print Prometheus metrics: the store's gauges and the persisted histograms");
  metrics->add_option("STORE", store_path, "Store directory")->required();
  std::string metrics_archive;
  metrics->add_option("--archive", metrics_archive,
                      "Also report how far this archive's export checkpoint is behind");

  std::string truncate_archive, truncate_before;
  CLI::App* truncate = app.add_subcommand(
      "truncate", "Drop the events before an ID once a verified archive holds them");
  truncate->add_option("STORE", store_path, "Store directory")->required();
  truncate->add_option("--archive", truncate_archive, "The archive that holds them")->required();
  truncate->add_option("--before", truncate_before, "Drop every event before this ID")->required();

  CLI::App* compact = app.add_subcommand(
      "compact", "Shrink the data file (no process may have the store open)");
  compact->add_option("STORE", store_path, "Store directory")->required();

  std::string read_aggregate, from_version, to_version;
  CLI::App* read = app.add_subcommand("read", "Print an aggregate's stream in version order");
  read->add_option("STORE", store_path, "Store directory")->required();
  read->add_option("AGGREGATE", read_aggregate, "Aggregate id")->required();
  read->add_option("--from-version", from_version, "First version (inclusive; default 1)");
  read->add_option("--to-version", to_version, "Last version (inclusive; default: the last)");

  refuse_empty_values(app);
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const CLI::App* command : app.get_subcommands({})) known = known || command->get_name() == argv[1];
    if (!known) {
      std::cerr << "lighthouse: unknown command '" << argv[1] << "'\nRun with --help for more information.\n";
      return kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return report_usage_error(app, error);
  }

  try {
    if (*init) {
      std::optional<std::uint32_t> node_id;
      if (!node_id_text.empty()) node_id = parse_node_id(node_id_text);
      run_init(store_path, node_id, std::cout);
    } else if (*append) {
      lighthouse::Store store = open_existing(store_path, false);
      run_append(store, STDIN_FILENO, std::cout, atomic,
                 lighthouse::parse_priority(priority_text).value_or(lighthouse::Priority::normal));
    } else if (*get) {
      run_get(store_path, event_id, std::cout);
    } else if (*stats) {
      run_stats(store_path, std::cout);
    } else if (*verify) {
      return run_verify(store_path, verify_json, verify_archive_dir, std::cout);
    } else if (*repair) {
      return run_repair(store_path, std::cout);
    } else if (*backup) {
      run_backup(store_path, backup_destination, std::cout);
    } else if (*sla) {
      run_sla(store_path, std::cout);
    } else if (*health) {
      run_health(store_path, emergency_reason, clear_emergency, std::cout);
    } else if (*metrics) {
      run_metrics(store_path, metrics_archive, std::cout);
    } else if (*truncate) {
      run_truncate(store_path, truncate_archive, truncate_before, std::cout);
    } else if (*compact) {
      run_compact(store_path, std::cout);
    } else if (*export_cmd) {
      run_export(store_path, archive_dir, segment_bytes, level, std::cout);
    } else if (*import_cmd) {
      run_import(archive_dir, store_path, until_id, std::cout);
    } else if (*archive_verify) {
      return run_archive_verify(archive_dir, std::cout);
    } else if (*archive_list) {
      run_archive_list(archive_dir, std::cout);
    } else if (*query) {
      run_query(store_path, query_args, std::cout);
    } else if (*tail) {
      run_tail(store_path, tail_args, std::cout);
    } else if (*read) {
      run_read(store_path, read_aggregate, from_version, to_version, std::cout);
    }
    return kExitSuccess;
  } catch (const lighthouse::Error& error) {
    std::cerr << "lighthouse: " << error.what() << '\n';
    return exit_code_for(error.code());
  } catch (const std::exception& error) {
    std::cerr << "lighthouse: " << error.what() << '\n';
    return kExitOther;
  }
}
