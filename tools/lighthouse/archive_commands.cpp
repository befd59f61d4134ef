#include "tool_tracing.h"
#include "archive_commands.h"

#include <filesystem>
#include "output.h"

#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "exit_codes.h"
#include "lighthouse/archive.h"
#include "lighthouse/store.h"
#include "store_commands.h"

namespace lighthouse::tool {
namespace {


// A progress bar on stderr when it is a terminal; nothing otherwise.
ArchiveProgressCallback progress_bar(const char* verb) {
  if (::isatty(STDERR_FILENO) == 0) return {};
  return [verb](const ArchiveProgress& p) {
    const double mb = static_cast<double>(p.record_bytes) / 1e6;
    const double rate = p.seconds > 0 ? mb / p.seconds : 0;
    std::string eta = "?";
    if (p.total_events > p.events && p.events > 0 && p.seconds > 0) {
      eta = std::to_string(static_cast<long>(p.seconds * static_cast<double>(p.total_events - p.events) /
                                             static_cast<double>(p.events))) + "s";
    }
    const int width = 30;
    const int filled = p.total_events > 0
                           ? static_cast<int>(width * static_cast<double>(p.events) / static_cast<double>(p.total_events))
                           : 0;
    std::fprintf(stderr, "\r%s [%-*s] %llu/%llu events  %.1f MB/s  ETA %s   ", verb, width,
                 std::string(static_cast<std::size_t>(std::min(filled, width)), '#').c_str(),
                 static_cast<unsigned long long>(p.events), static_cast<unsigned long long>(p.total_events),
                 rate, eta.c_str());
    std::fflush(stderr);
  };
}

void end_progress() {
  if (::isatty(STDERR_FILENO) != 0) std::fprintf(stderr, "\n");
}

}  // namespace

void run_export(const std::string& store_path, const std::string& dir, std::uint64_t segment_bytes,
                int level, std::ostream& out) {
  Store store = open_existing(store_path, true);
  ExportOptions options;
  options.segment_bytes = segment_bytes;
  options.level = level;
  options.progress = progress_bar("export");
  ExportReport r = export_archive(store, dir, options);
  end_progress();
  Json j;
  j["events"] = r.events;
  j["segments"] = r.segments;
  j["record_bytes"] = r.record_bytes;
  j["compressed_bytes"] = r.compressed_bytes;
  j["removed_leftovers"] = r.removed_leftovers;
  j["seconds"] = r.seconds;
  j["mb_per_second"] = mb_per_second(r.record_bytes, r.seconds);
  print_line(out, dump(j));
}

void run_import(const std::string& dir, const std::string& store_path, const std::string& until,
                std::ostream& out) {
  ImportOptions options;
  if (!until.empty()) options.until = EventId::parse(until);
  options.progress = progress_bar("import");
  // The store is created if missing: an import rebuilds a store.
  Options store_options;
  store_options.tracing = tool_tracing().options();
  store_options.create_if_missing = true;
  store_options.check_structure_on_open = structure_check_requested();
  read_manifest(dir);  // a missing or broken archive is refused before a store is created
  std::error_code ec;
  const bool existed = std::filesystem::exists(store_path, ec);
  ImportReport r;
  {
    Store store = Store::open(store_path, store_options);
    try {
      r = import_archive(dir, store, options);
    } catch (const Error&) {
      // A refused import writes nothing: not even the empty store it made.
      // (import_archive checks the whole archive before its first write.)
      store.close();
      if (!existed) std::filesystem::remove_all(store_path, ec);
      throw;
    }
  }
  end_progress();
  Json j;
  j["events"] = r.events;
  j["record_bytes"] = r.record_bytes;
  j["last_id"] = r.last ? r.last->to_string() : "";
  j["seconds"] = r.seconds;
  j["mb_per_second"] = mb_per_second(r.record_bytes, r.seconds);
  print_line(out, dump(j));
}

int run_archive_verify(const std::string& dir, std::ostream& out) {
  ArchiveVerifyReport r = verify_archive(dir);
  for (const auto& p : r.problems) print_line(out, "damaged\t" + p.file + "\t" + p.detail);
  for (const auto& l : r.leftovers) {
    print_line(out, "leftover\t" + l + "\tnot in the manifest (an interrupted export; the next export removes it)");
  }
  print_line(out, std::string(r.ok() ? "ok" : "damaged") + ": " + std::to_string(r.manifest.segments.size()) +
                 " segments, " + std::to_string(r.events) + " events, " + std::to_string(r.leftovers.size()) +
                 " leftovers");
  return r.ok() ? kExitSuccess : exit_code_for(ErrorCode::corruption);
}

void run_archive_list(const std::string& dir, std::ostream& out) {
  ArchiveManifest m = read_manifest(dir);
  for (const auto& s : m.segments) {
    Json j;
    j["file"] = s.file;
    j["first_id"] = s.first_id;
    j["last_id"] = s.last_id;
    j["first_sequence"] = s.first_sequence;
    j["last_sequence"] = s.last_sequence;
    j["count"] = s.count;
    j["record_bytes"] = s.record_bytes;
    j["compressed_bytes"] = s.compressed_bytes;
    j["sha256"] = s.sha256;
    print_line(out, dump(j));
  }
}

}  // namespace lighthouse::tool
