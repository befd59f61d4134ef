// The command line of the operations family: verify, repair, backup, sla,
// health, metrics and compact.
#include <iostream>

#include "cli.h"
#include "integrity_commands.h"

namespace lighthouse::tool {
namespace {

struct Arguments {
  std::string store, archive, destination, emergency_reason;
  bool json = false, clear_emergency = false;
};

void add_integrity(CLI::App& app, Commands& commands, const std::shared_ptr<Arguments>& a) {
  CLI::App* verify =
      app.add_subcommand("verify", "Check every checksum, the chain, sequences, versions, indexes and counters");
  add_store_argument(*verify, a->store);
  verify->add_flag("--json", a->json, "Print the report as one JSON object");
  verify->add_option("--archive", a->archive,
                     "Also verify this archive and that archive plus store form one unbroken chain");
  footer_with_exit_codes(*verify, "Exit code 0 when the store is clean, 5 when anything is wrong. It checks the LMDB file's "
                         "structure (every page) before anything reads through LMDB. It never writes to the store, "
                         "except that a store whose structure is damaged is marked so: every writer then refuses to "
                         "write until `lighthouse repair` (of a whole structure) clears the mark.");
  commands.push_back({verify, [a] { return run_verify(a->store, a->json, a->archive, std::cout); }});

  CLI::App* repair =
      app.add_subcommand("repair", "Rebuild the indexes and counters from the events (never drops an event)");
  add_store_argument(*repair, a->store);
  footer_with_exit_codes(*repair,
                         "It checks the file's structure first: a store whose structure is damaged is not repaired "
                         "(exit code 5) but salvaged (`lighthouse salvage`). Repair clears the damage mark verify "
                         "leaves.");
  commands.push_back({repair, [a] { return run_repair(a->store, std::cout); }});

  CLI::App* backup =
      app.add_subcommand("backup", "Write a consistent, compacted, verified copy while writers keep writing");
  add_store_argument(*backup, a->store);
  backup->add_option("DEST", a->destination, "A new or empty directory")->required();
  commands.push_back({backup, succeeds([a] { run_backup(a->store, a->destination, std::cout); })});

  CLI::App* salvage = app.add_subcommand(
      "salvage", "Build a new store from every event a damaged store still holds (read from its pages, not through LMDB)");
  add_store_argument(*salvage, a->store);
  salvage->add_option("DEST", a->destination, "A new or empty directory")->required();
  footer_with_exit_codes(*salvage,
                         "Prints what was salvaged and what was lost. Exit code 0 when every event was salvaged, 5 "
                         "when some were lost (the new store holds the history up to the first loss; readable events "
                         "after it are written beside it). The damaged store is not changed.");
  commands.push_back({salvage, [a] { return run_salvage(a->store, a->destination, std::cout); }});
}

void add_monitoring(CLI::App& app, Commands& commands, const std::shared_ptr<Arguments>& a) {
  CLI::App* sla =
      app.add_subcommand("sla", "Print the SLA report the writing process last persisted, with its age and pid");
  add_store_argument(*sla, a->store);
  commands.push_back({sla, succeeds([a] { run_sla(a->store, std::cout); })});

  CLI::App* health = app.add_subcommand(
      "health", "Print the store's health state, its reason and since when; or enter / clear a manual emergency");
  add_store_argument(*health, a->store);
  exclude_each_other({health->add_option("--enter-emergency", a->emergency_reason,
                                         "Enter a manual emergency for every process: appends are refused until "
                                         "--clear-emergency"),
                      health->add_flag("--clear-emergency", a->clear_emergency, "End a manual emergency")});
  add_structure_check(*health);
  footer_with_exit_codes(*health,
                         "States: healthy, warning, degraded (low-priority appends are shed), emergency (appends "
                         "refused). Without options it opens the store read-only and never writes.");
  commands.push_back(
      {health, succeeds([a] { run_health(a->store, a->emergency_reason, a->clear_emergency, std::cout); })});

  CLI::App* metrics =
      app.add_subcommand("metrics", "Print Prometheus metrics: the store's gauges and the persisted histograms");
  add_store_argument(*metrics, a->store);
  metrics->add_option("--archive", a->archive, "Also report how far this archive's export checkpoint is behind");
  commands.push_back({metrics, succeeds([a] { run_metrics(a->store, a->archive, std::cout); })});

  CLI::App* compact = app.add_subcommand("compact", "Shrink the data file (no process may have the store open)");
  add_store_argument(*compact, a->store);
  commands.push_back({compact, succeeds([a] { run_compact(a->store, std::cout); })});

  CLI::App* upgrade = app.add_subcommand(
      "upgrade", "Rewrite a store of an older format (it opens read-only) in this build's format; prints "
                 "{store, from_format, to_format, upgraded, events, seconds}");
  add_store_argument(*upgrade, a->store);
  upgrade->footer(
      "No process may have the store open. The store must verify first. The new store is written in STORE/.upgrade, "
      "verified and renamed over the old one: killed at any moment, the store is the old one or the new one. "
      "Checksums and the chain are recomputed: the next export goes into a new archive (an old archive still "
      "verifies, imports into an empty store and serves truncate --archive).");
  commands.push_back({upgrade, succeeds([a] { run_upgrade(a->store, std::cout); })});
}

}  // namespace

void add_operations_commands(CLI::App& app, Commands& commands) {
  auto a = std::make_shared<Arguments>();
  add_integrity(app, commands, a);
  add_monitoring(app, commands, a);
}

}  // namespace lighthouse::tool
