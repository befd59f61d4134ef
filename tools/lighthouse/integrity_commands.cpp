#include "tool_tracing.h"
#include "integrity_commands.h"
#include "output.h"

#include <chrono>
#include <optional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "exit_codes.h"
#include "json_event.h"
#include "lighthouse/archive.h"
#include "lighthouse/store.h"
#include "store_commands.h"

namespace lighthouse::tool {
namespace {

Json report_json(const VerifyReport& report) {
  Json out;
  out["ok"] = report.ok();
  out["events_checked"] = report.events_checked;
  out["index_entries_checked"] = report.index_entries_checked;
  out["pages_checked"] = report.pages_checked;
  out["problem_count"] = report.problem_count;
  Json problems = Json::array();
  for (const auto& p : report.problems) {
    problems.push_back({{"category", p.category}, {"subject", p.subject}, {"detail", p.detail}});
  }
  out["problems"] = problems;
  return out;
}


}  // namespace

namespace {
// verify and repair must open a damaged store to report on it.
Store open_for_inspection(const std::string& path, bool read_only) {
  Options options;
  options.tracing = tool_tracing().options();
  options.create_if_missing = false;
  options.read_only = read_only;
  options.check_on_open = false;
  return Store::open(path, options);
}
}  // namespace

// A store too damaged to open (its main database, say): the structural check
// of its file alone says what is wrong, with the error of the open.
VerifyReport unopenable(const std::string& path, const Error& refused) {
  VerifyReport report = Store::check_file(path);
  ++report.problem_count;
  report.problems.push_back({"open", path, refused.what()});
  return report;
}

int run_verify(const std::string& path, bool json, const std::string& archive, std::ostream& out) {
  std::optional<Store> store;
  VerifyReport report;
  try {
    store.emplace(open_for_inspection(path, true));
  } catch (const Error& e) {
    if (e.code() != ErrorCode::corruption) throw;
    report = unopenable(path, e);
  }
  if (store) report = store->verify();
  if (store && !archive.empty()) {
    // Archive plus store must form one unbroken chain.
    ArchiveVerifyReport archived = verify_archive(archive);
    for (const auto& p : archived.problems) {
      ++report.problem_count;
      report.problems.push_back({"archive", p.file, p.detail});
    }
    for (const auto& p : cross_check_archive(*store, archive)) {
      ++report.problem_count;
      report.problems.push_back({"archive", p.file, p.detail});
    }
  }
  if (json) {
    print_line(out, dump(report_json(report)));
  } else {
    for (const auto& p : report.problems) print_line(out, p.category + "\t" + p.subject + "\t" + p.detail);
    if (report.problem_count > report.problems.size()) {
      print_line(out, "... and " + std::to_string(report.problem_count - report.problems.size()) + " more");
    }
    print_line(out, std::string(report.ok() ? "ok" : "damaged") + ": " + std::to_string(report.pages_checked) +
                        " pages, " + std::to_string(report.events_checked) + " events and " +
                        std::to_string(report.index_entries_checked) + " index entries checked, " +
                        std::to_string(report.problem_count) + " problems");
  }
  return report.ok() ? kExitSuccess : exit_code_for(ErrorCode::corruption);
}

int run_repair(const std::string& path, std::ostream& out) {
  Store store = open_for_inspection(path, false);
  RepairReport report = store.repair();
  Json j;
  j["events_indexed"] = report.events_indexed;
  Json left = Json::array();
  for (const auto& p : report.left_for_operator) {
    left.push_back({{"category", p.category}, {"subject", p.subject}, {"detail", p.detail}});
  }
  j["left_for_operator"] = left;
  j["problems_before"] = report.before.problem_count;
  j["problems_after"] = report.after.problem_count;
  j["after"] = report_json(report.after);
  if (!report.refused.empty()) j["refused"] = report.refused;
  print_line(out, dump(j));
  if (!report.refused.empty()) std::cerr << "lighthouse: repair refused: " << report.refused << '\n';
  return report.after.ok() ? kExitSuccess : exit_code_for(ErrorCode::corruption);
}

int run_salvage(const std::string& path, const std::string& destination, std::ostream& out) {
  const SalvageReport r = Store::salvage(path, destination);
  Json j;
  j["destination"] = r.destination;
  j["events_salvaged"] = r.events_salvaged;
  j["first_sequence"] = r.first_sequence;
  j["last_sequence"] = r.last_sequence;
  Json lost = Json::array();
  for (const auto& range : r.lost) lost.push_back({{"first", range.first}, {"last", range.last}});
  j["lost"] = lost;
  j["events_lost"] = r.events_lost;
  j["events_after_gap"] = r.events_after_gap;
  j["after_gap_file"] = r.after_gap_file;
  j["records_damaged"] = r.records_damaged;
  j["pages_unreadable"] = r.pages_unreadable;
  j["scanned_pages"] = r.scanned_pages;
  j["checkpoints_salvaged"] = r.checkpoints_salvaged;
  j["complete"] = r.complete();
  print_line(out, dump(j));
  return r.complete() ? kExitSuccess : exit_code_for(ErrorCode::corruption);
}

void run_truncate(const std::string& path, const std::string& archive, const std::string& before,
                  std::ostream& out) {
  const EventId id = EventId::parse(before);
  Store store = open_existing(path, false);
  TruncateReport r = store.truncate_before(id, archive);
  Json j;
  j["events_dropped"] = r.events_dropped;
  j["base_sequence"] = r.base_sequence;
  j["archive"] = r.archive;
  j["seconds"] = r.seconds;
  print_line(out, dump(j));
}

void run_upgrade(const std::string& path, std::ostream& out) {
  const UpgradeReport r = Store::upgrade(path);
  Json j;
  j["store"] = path;
  j["from_format"] = r.from_format;
  j["to_format"] = r.to_format;
  j["upgraded"] = r.upgraded;
  j["events"] = r.events;
  j["seconds"] = r.seconds;
  print_line(out, dump(j));
}

void run_compact(const std::string& path, std::ostream& out) {
  CompactReport r = Store::compact(path);
  Json j;
  j["bytes_before"] = r.bytes_before;
  j["bytes_after"] = r.bytes_after;
  print_line(out, dump(j));
}

void run_health(const std::string& path, const std::string& enter_reason, bool clear, std::ostream& out) {
  if (enter_reason.empty() && !clear) {
    Store store = open_existing(path, true);
    print_line(out, dump(health_json(store.health())));
    return;
  }
  Options options;
  options.tracing = tool_tracing().options();
  options.create_if_missing = false;
  // A short-lived process does not judge the store's triggers: it only
  // records what the operator says.
  options.health.enabled = false;
  Store store = Store::open(path, options);
  if (clear) store.clear_emergency();
  else store.enter_emergency(enter_reason);
  print_line(out, dump(health_json(store.health())));
}

void run_sla(const std::string& path, std::ostream& out) {
  Store store = open_existing(path, true);
  const std::string persisted = store.persisted_sla();
  Json j = persisted.empty() ? Json::object() : Json::parse(persisted, nullptr, false);
  if (!j.is_object()) throw Error(ErrorCode::corruption, "the persisted SLA report is not JSON");
  Json line;
  if (j.empty()) {
    line["report"] = nullptr;
    line["note"] = "no process has persisted a report yet";
  } else {
    const auto now = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                    std::chrono::system_clock::now().time_since_epoch())
                                                    .count());
    const std::uint64_t written = j.value("written_ns", std::uint64_t{0});
    line["age_seconds"] = written != 0 && now > written ? static_cast<double>(now - written) / 1e9 : 0.0;
    line["pid"] = j.value("pid", std::int64_t{0});
    line["targets"] = j.value("targets", Json::object());
    line["windows"] = j.value("windows", Json::array());
    line["backlog"] = j.value("backlog", std::uint64_t{0});
    line["breaches"] = j.value("breaches", Json::array());
  }
  line["health"] = health_json(store.health());
  print_line(out, dump(line));
}

void run_metrics(const std::string& path, const std::string& archive, std::ostream& out) {
  Store store = open_existing(path, true);
  out << store.persisted_metrics_text();
  if (!archive.empty()) {
    // How far the archive's export checkpoint is behind the store.
    const ArchiveManifest m = read_manifest(archive);
    const std::uint64_t last = store.stats().last_sequence;
    out << "# HELP lighthouse_export_checkpoint_lag_events Events appended after the archive's export checkpoint.\n"
        << "# TYPE lighthouse_export_checkpoint_lag_events gauge\n"
        << "lighthouse_export_checkpoint_lag_events " << (last > m.last_sequence ? last - m.last_sequence : 0)
        << '\n';
  }
  out << std::flush;
  if (!out) throw Error(ErrorCode::io_error, "cannot write to standard output");
}

void run_backup(const std::string& path, const std::string& destination, std::ostream& out) {
  Store store = open_existing(path, true);
  BackupReport report = store.backup(destination);
  Json j;
  j["backup"] = report.path;
  j["bytes"] = report.bytes;
  j["events"] = report.events;
  j["seconds"] = report.seconds;
  j["mb_per_second"] = mb_per_second(report.bytes, report.seconds);
  print_line(out, dump(j));
}

}  // namespace lighthouse::tool
