// The command line of the archive family: export, import, archive verify,
// archive list and truncate.
#include <iostream>

#include "archive_commands.h"
#include "cli.h"
#include "integrity_commands.h"

namespace lighthouse::tool {
namespace {

struct Arguments {
  std::string store, archive, until, before;
  std::uint64_t segment_bytes = 100ull << 20;
  int level = 6;
};

}  // namespace

void add_archive_commands(CLI::App& app, Commands& commands) {
  auto a = std::make_shared<Arguments>();
  CLI::App* export_cmd =
      app.add_subcommand("export", "Export new events into gzip segment files with a manifest (incremental)");
  add_store_argument(*export_cmd, a->store);
  export_cmd->add_option("ARCHIVE_DIR", a->archive, "Archive directory (created if missing)")->required();
  export_cmd
      ->add_option("--segment-size", a->segment_bytes,
                   "Uncompressed bytes per segment before a new one starts (default 104857600)")
      ->check(CLI::Range(std::uint64_t{1024}, std::uint64_t{1} << 40));
  export_cmd->add_option("--level", a->level, "gzip level 1..12 (default 6)")->check(CLI::Range(1, 12));
  commands.push_back(
      {export_cmd, succeeds([a] { run_export(a->store, a->archive, a->segment_bytes, a->level, std::cout); })});

  CLI::App* import_cmd = app.add_subcommand("import", "Rebuild a store from an archive");
  import_cmd->add_option("ARCHIVE_DIR", a->archive, "Archive directory")->required();
  import_cmd->add_option("STORE", a->store, "Store directory (created if missing)")->required();
  import_cmd->add_option("--until", a->until, "Import events up to this ID (inclusive)");
  add_structure_check(*import_cmd);
  commands.push_back({import_cmd, succeeds([a] { run_import(a->archive, a->store, a->until, std::cout); })});

  CLI::App* archive_cmd = app.add_subcommand("archive", "Inspect an archive");
  archive_cmd->require_subcommand(1);
  CLI::App* verify = archive_cmd->add_subcommand(
      "verify", "Check every file hash, record checksum, the chain and the manifest (offline)");
  verify->add_option("ARCHIVE_DIR", a->archive, "Archive directory")->required();
  commands.push_back({verify, [a] { return run_archive_verify(a->archive, std::cout); }});
  CLI::App* list = archive_cmd->add_subcommand("list", "Print the manifest's segments as JSON lines");
  list->add_option("ARCHIVE_DIR", a->archive, "Archive directory")->required();
  commands.push_back({list, succeeds([a] { run_archive_list(a->archive, std::cout); })});

  CLI::App* truncate =
      app.add_subcommand("truncate", "Drop the events before an ID once a verified archive holds them");
  add_store_argument(*truncate, a->store);
  truncate->add_option("--archive", a->archive, "The archive that holds them")->required();
  truncate->add_option("--before", a->before, "Drop every event before this ID")->required();
  add_structure_check(*truncate);
  commands.push_back({truncate, succeeds([a] { run_truncate(a->store, a->archive, a->before, std::cout); })});
}

}  // namespace lighthouse::tool
