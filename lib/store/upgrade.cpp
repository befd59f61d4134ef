// Store::upgrade(): a store of an older format rewritten in the format this
// build writes. The new store is written beside the old one (STORE/.upgrade),
// verified, and swapped in with the rename protocol of compact(): a SIGKILL
// at any moment leaves either the old store or the new one.
#include "store/upgrade.h"

#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "codec/record.h"
#include "files.h"
#include "lighthouse/version.h"
#include "store/archive_access.h"
#include "store/retention.h"
#include "store/salvage.h"
#include "store/store_impl.h"

namespace lighthouse {
namespace fs = std::filesystem;
namespace {

constexpr std::uint64_t kChunk = 10'000;  // events a transaction

// The version of each aggregate's first event in the store (what the new
// store's base needs: store_copy::write_base). Only a truncated store has an
// aggregate whose first stored event is not its first: the scan is skipped
// for the others.
std::map<std::string, std::uint64_t> first_versions(const Store& old, std::uint64_t base) {
  std::map<std::string, std::uint64_t> first;
  if (base == 1) return first;
  Query all;
  all.verify_on_read = ReadCheck::off;  // verified as a whole before
  for (const RecordedEvent& e : old.query(all)) {
    if (!e.aggregate.empty()) first.emplace(e.aggregate, e.aggregate_version);
  }
  return first;
}

// Every event of `old`, in chunks, rewritten in the current format.
std::uint64_t copy_events(const Store& old, Store& fresh, const StoreStats& stats, Sha256 chain) {
  std::uint64_t copied = 0;
  for (std::uint64_t from = stats.base_sequence; from <= stats.last_sequence; from += kChunk) {
    Query q;
    q.from_sequence = from;
    q.to_sequence = std::min(stats.last_sequence, from + kChunk - 1);
    q.verify_on_read = ReadCheck::full;
    std::vector<RecordedEvent> chunk;
    for (const RecordedEvent& e : old.query(q)) chunk.push_back(e);
    for (RecordedEvent& e : chunk) codec::to_format2(e, chain);
    store_access::import_events(fresh, chunk);
    copied += chunk.size();
  }
  return copied;
}

// Writes the upgraded store into `work` and verifies it; false (nothing
// written) when the store is of the current format already.
bool write_upgraded(const fs::path& canonical, const fs::path& work, UpgradeReport& report) {
  Options read;
  read.read_only = true;
  Store old = Store::open(canonical, read);
  const StoreStats stats = old.stats();
  report.from_format = stats.format_version;
  if (report.from_format == kFormatVersion) return false;
  report.events = stats.event_count;
  const VerifyReport verified = old.verify();
  if (!verified.ok()) {
    throw Error(ErrorCode::corruption, "store '" + canonical.string() + "' does not verify (" +
                                           verified.problems.front().category + " " +
                                           verified.problems.front().detail +
                                           "): nothing is upgraded; run `lighthouse repair` or `lighthouse salvage`");
  }
  const store_copy::OldMeta meta = store_copy::read_old_meta(canonical / "data.mdb");
  Options write;
  write.node_id = stats.node_id;
  write.health.window_seconds = 0;
  Store fresh = Store::open(work, write);
  const std::uint64_t base = meta.base_sequence.value_or(1);
  const Sha256 anchor = meta.base_chain.value_or(Sha256{});
  store_copy::write_base(StoreAccess::impl(fresh), meta, base, anchor, first_versions(old, base),
                         canonical / "data.mdb");
  if (copy_events(old, fresh, stats, anchor) != stats.event_count) {
    throw Error(ErrorCode::internal, "store '" + canonical.string() + "' changed while it was upgraded");
  }
  for (const auto& [consumer, position] : meta.checkpoints) fresh.set_checkpoint(consumer, position);
  const VerifyReport check = fresh.verify();
  if (!check.ok()) {
    throw Error(ErrorCode::internal, "the upgraded store does not verify (" + check.problems.front().category + " " +
                                         check.problems.front().detail + "): nothing is upgraded");
  }
  fresh.close();
  old.close();
  return true;
}

// The upgrade's work directory, removed unless the swap took it.
struct UpgradeWork {
  fs::path dir;
  ~UpgradeWork() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
};

}  // namespace

UpgradeReport upgrade_store(const fs::path& path) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  const fs::path canonical = closed_store(path, "upgrade");
  UpgradeReport report;
  report.to_format = kFormatVersion;
  // What an upgrade killed before its end left behind is not the store's
  // (before the swap: a partial new store; after it: an empty directory).
  UpgradeWork work{canonical / ".upgrade"};
  fs::remove_all(work.dir, ec);
  if (!write_upgraded(canonical, work.dir, report)) {
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;  // nothing to do
  }
  sync_path(work.dir / "data.mdb", false);
  if (::rename((work.dir / "data.mdb").c_str(), (canonical / "data.mdb").c_str()) != 0) {
    throw Error(ErrorCode::io_error,
                "cannot replace '" + (canonical / "data.mdb").string() + "': " + std::strerror(errno));
  }
  sync_path(canonical, true);
  report.upgraded = true;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace lighthouse
