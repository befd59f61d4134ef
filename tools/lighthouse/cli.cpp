#include "cli.h"

#include <charconv>
#include <iostream>

#include "exit_codes.h"
#include "store_commands.h"

namespace lighthouse::tool {

CLI::Option* add_store_argument(CLI::App& command, std::string& path) {
  return command.add_option("STORE", path, "Store directory")->required();
}

void add_filter_options(CLI::App& command, FilterArguments& filter) {
  command.add_option("--type", filter.types, "Events of this type (repeat for several)");
  command.add_option("--type-prefix", filter.type_prefix, "Events whose type starts with this");
  command.add_option("--aggregate", filter.aggregate, "Events of this aggregate");
}

void exclude_each_other(const std::vector<CLI::Option*>& options) {
  for (CLI::Option* a : options) {
    for (CLI::Option* b : options) {
      if (a != b) a->excludes(b);
    }
  }
}

void footer_with_exit_codes(CLI::App& command, const std::string& text) {
  command.footer(text + "\n\n" + exit_code_table());
}

void refuse_empty_values(CLI::App& command) {
  static const CLI::Validator not_empty(
      [](std::string& value) { return value.empty() ? std::string("an empty value is not allowed") : std::string(); },
      "");
  for (CLI::Option* option : command.get_options()) {
    if (option->get_type_size_max() != 0) option->check(not_empty);
  }
  for (CLI::App* sub : command.get_subcommands({})) refuse_empty_values(*sub);
}

void add_structure_check(CLI::App& command) {
  command.add_flag_callback(
      "--check", [] { check_structure_on_open(true); },
      "Check the structure of the store's whole file before writing to it (reads every page; a damaged store is "
      "refused with exit code 5)");
}

std::optional<std::uint32_t> parse_node_id(const std::string& text) {
  std::uint32_t value = 0;
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

int report_usage_error(CLI::App& app, const CLI::ParseError& error) {
  if (error.get_exit_code() == 0) return app.exit(error);  // --help, --version
  std::cerr << "lighthouse: " << error.what() << "\nRun with --help for more information.\n";
  const bool bad_value = dynamic_cast<const CLI::ValidationError*>(&error) != nullptr ||
                         dynamic_cast<const CLI::ConversionError*>(&error) != nullptr;
  return bad_value ? kExitInvalidInput : kExitUsage;
}

}  // namespace lighthouse::tool
