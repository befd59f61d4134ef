// The command line's shape: each subcommand family registers its
// subcommands and options with add_*_commands(), and what runs each one
// once the command line is parsed. main.cpp parses and dispatches.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "query_commands.h"

namespace lighthouse::tool {

// A subcommand and what runs it: returns the exit code.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};
using Commands = std::vector<Command>;

// The families (each in its own file).
void add_store_commands(CLI::App& app, Commands& commands);       // init, append, get, stats, read, query, tail
void add_operations_commands(CLI::App& app, Commands& commands);  // verify, repair, backup, sla, health, metrics, compact
void add_archive_commands(CLI::App& app, Commands& commands);     // export, import, archive verify|list, truncate
void add_serve_command(CLI::App& app, Commands& commands);        // serve
void add_replication_commands(CLI::App& app, Commands& commands);  // replicate, replica, promote

// Shared pieces of the families' wiring.
// The STORE positional of most subcommands, bound to `path`.
CLI::Option* add_store_argument(CLI::App& command, std::string& path);
void add_filter_options(CLI::App& command, FilterArguments& filter);
// Options of which at most one may be given (two are a usage error).
void exclude_each_other(const std::vector<CLI::Option*>& options);
// A subcommand's own footer replaces the tool's: keep the exit codes under it.
void footer_with_exit_codes(CLI::App& command, const std::string& text);
// No option or argument of the tool means anything when empty: an empty
// value (an unset shell variable) is refused rather than read as "not given".
void refuse_empty_values(CLI::App& command);
// The --check flag of a command that writes: the structural check of the
// store's whole file before it is opened (Options::check_structure_on_open).
void add_structure_check(CLI::App& command);
// A node id: a decimal from 0 to 4294967295, no leading zero.
std::optional<std::uint32_t> parse_node_id(const std::string& text);
// The shape of the command line (an unknown command or option, a missing
// argument, options that exclude each other) is a usage error; a value the
// parser refuses (empty, not a number, out of range, not one of the
// choices) is invalid input, like a malformed ID or time found later.
int report_usage_error(CLI::App& app, const CLI::ParseError& error);

// Runs `f` and returns exit code 0 (for commands that print and succeed).
template <typename F>
std::function<int()> succeeds(F f) {
  return [f = std::move(f)]() mutable {
    f();
    return 0;
  };
}

}  // namespace lighthouse::tool
