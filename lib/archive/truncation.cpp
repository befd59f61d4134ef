// Store::truncate_before(): retention driven by an archive. A Store method
// defined in the archive layer, since lib/store knows nothing of archives:
// it checks the archive here and asks the store, through
// store/archive_access.h, to drop what the archive covers.
#include <chrono>

#include "archive/manifest.h"
#include "lighthouse/store.h"
#include "store/archive_access.h"

namespace lighthouse {
namespace fs = std::filesystem;
namespace {

// Events dropped per write transaction: writers wait at most this long.
constexpr std::uint64_t kEventsPerTransaction = 10'000;

}  // namespace

TruncateReport Store::truncate_before(const EventId& id, const fs::path& archive_dir) {
  store_access::refuse_read_only(*this);
  const auto start = std::chrono::steady_clock::now();
  const StoreStats stats = this->stats();
  TruncateReport report;
  report.base_sequence = stats.base_sequence;
  // The cut: the first event at or after `id`; everything before it goes.
  std::uint64_t cut = stats.last_sequence + 1;
  {
    // after_id is exclusive: step back to make `id` itself kept.
    Query q;
    q.limit = 1;
    if (id != EventId{}) {
      EventId before = id;
      if (before.node_id > 0) {
        --before.node_id;
      } else if (before.sequence > 0) {
        --before.sequence;
        before.node_id = ~0u;
      } else {
        --before.timestamp_ns;
        before.sequence = ~0ull;
        before.node_id = ~0u;
      }
      q.after_id = before;
    }
    if (auto first_kept = query(q).next()) cut = first_kept->id.sequence;
  }
  // The archive must be one even when there is nothing to drop: a wrong path
  // is the caller's mistake, not a successful no-op.
  const fs::path dir = fs::absolute(archive_dir);
  const ArchiveManifest manifest = archive::load_manifest(dir);
  if (cut <= stats.base_sequence) return report;  // nothing before `id`
  const std::uint64_t drop_to = cut - 1;
  // The archive holds the dropped events only if it is whole: exactly what
  // `archive verify` and import require (every segment, every record, the
  // chain, and the manifest's checkpoint against its last segment).
  const ArchiveVerifyReport verified = verify_archive(dir);
  if (!verified.ok()) {
    throw Error(ErrorCode::corruption, "archive '" + dir.string() + "' does not verify (" +
                                           verified.problems.front().file + ": " + verified.problems.front().detail +
                                           "): nothing is truncated");
  }

  if (manifest.base_sequence > stats.base_sequence) {
    throw Error(ErrorCode::invalid_argument, "archive '" + dir.string() + "' starts at sequence " +
                                                 std::to_string(manifest.base_sequence) +
                                                 ": it does not hold the store's events from " +
                                                 std::to_string(stats.base_sequence));
  }
  if (manifest.last_sequence < drop_to) {
    throw Error(ErrorCode::invalid_argument,
                "archive '" + dir.string() + "' holds events up to sequence " +
                    std::to_string(manifest.last_sequence) +
                    " (its export checkpoint); truncating before " + id.to_string() +
                    " would drop events up to " + std::to_string(drop_to) + ": export first");
  }
  // Re-verify what covers the range, and check it is this store's history.
  const std::string archived_chain =
      archive::verify_through(dir, manifest, stats.base_sequence, drop_to);
  Query last_dropped;
  last_dropped.from_sequence = drop_to;
  last_dropped.to_sequence = drop_to;
  auto event = query(last_dropped).next();
  if (!event || to_hex(event->chain) != archived_chain) {
    throw Error(ErrorCode::invalid_argument,
                "archive '" + dir.string() + "' does not hold this store's event " +
                    std::to_string(drop_to) +
                    " (its chain differs): it is another store's archive");
  }
  for (std::uint64_t from = stats.base_sequence; from <= drop_to; from += kEventsPerTransaction) {
    store_access::drop_events(*this, std::min(drop_to, from + kEventsPerTransaction - 1), dir.string());
  }
  report.events_dropped = drop_to - stats.base_sequence + 1;
  report.base_sequence = cut;
  report.archive = dir.string();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace lighthouse
