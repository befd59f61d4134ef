// lighthouse — the command-line tool: parses the command line that the
// subcommand families register (cli.h) and maps failures to exit codes.
// Results go to stdout, one JSON line each; errors go to stderr as
// "lighthouse: ...".
#include <csignal>
#include <exception>
#include <iostream>
#include <string>

#include "cli.h"
#include "exit_codes.h"
#include "lighthouse/error.h"
#include "lighthouse/faults.h"
#include "lighthouse/options.h"
#include "lighthouse/version.h"
#include "store_commands.h"
#include "tool_tracing.h"

using namespace lighthouse::tool;

int main(int argc, char** argv) {
  // A closed stdout should be an error we report, not a signal that kills us.
  std::signal(SIGPIPE, SIG_IGN);
  // A damaged store's page that LMDB reads outside its map is exit code 5
  // with a message naming the store, not a crash (any other fault still is).
  lighthouse::install_store_fault_handler(kExitCorruption);

  CLI::App app("Lighthouse: an embedded, transactional event store.", "lighthouse");
  app.footer(exit_code_table());
  app.set_version_flag("--version", LIGHTHOUSE_VERSION);
  app.require_subcommand(1);
  // Tracing's options go with any command (docs/tracing.md).
  TracingFlags tracing_flags;
  app.fallthrough();
  app.add_option("--otlp-endpoint", tracing_flags.endpoint,
                 "Export spans over OTLP/HTTP to this URL (http://HOST:PORT/v1/traces); default: "
                 "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces")
      ->group("Tracing");
  app.add_option("--otlp-protocol", tracing_flags.protocol, "http/protobuf (default) or http/json")
      ->check(CLI::IsMember({"http/protobuf", "http/json"}))
      ->group("Tracing");
  double quorum_timeout = lighthouse::Options{}.quorum_timeout_seconds;
  app.add_option("--quorum-timeout", quorum_timeout,
                 "Seconds an append waits for the stream's acknowledgement on a store replicated in quorum mode, "
                 "before it fails with exit code 8 (default 5)")
      ->check(CLI::Range(0.001, 86400.0))
      ->group("Replication");
  Commands commands;
  add_store_commands(app, commands);
  add_operations_commands(app, commands);
  add_archive_commands(app, commands);
  add_serve_command(app, commands);
#ifdef LIGHTHOUSE_WITH_REPLICATION
  add_replication_commands(app, commands);
#endif
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
  set_quorum_timeout(quorum_timeout);
  ToolTracing& tracing = tool_tracing();
  const int code = [&]() -> int {
    try {
      for (const Command& command : commands) {
        if (!command.app->parsed()) continue;
        const CLI::App* parent = command.app->get_parent();
        const bool nested = parent != nullptr && parent->get_parent() != nullptr;
        tracing.start(tracing_flags, (nested ? parent->get_name() + " " : std::string()) + command.app->get_name());
        return command.run();
      }
      return kExitUsage;  // not reached: a subcommand is required
    } catch (const lighthouse::Error& error) {
      std::cerr << "lighthouse: " << error.what() << '\n';
      return exit_code_for(error.code());
    } catch (const std::exception& error) {
      std::cerr << "lighthouse: " << error.what() << '\n';
      return kExitOther;
    }
  }();
  tracing.finish(code);
  return code;
}
