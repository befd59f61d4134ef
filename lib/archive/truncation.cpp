// Store::truncate_before(): retention driven by an archive. A Store method
// defined in the archive layer, since lib/store knows nothing of archives:
// it checks the archive here and asks the store, through
// store/archive_access.h, to drop what the archive covers.
#include <chrono>

#include "archive/manifest.h"
#include "codec/record.h"
#include "codec/sha256.h"
#include "lighthouse/store.h"
#include "store/archive_access.h"
#include "task_span.h"

namespace lighthouse {
namespace fs = std::filesystem;
namespace {

// Events dropped per write transaction: writers wait at most this long.
constexpr std::uint64_t kEventsPerTransaction = 10'000;

// The chain value of the store's event at `sequence` (empty: none).
std::string chain_at(const Store& store, std::uint64_t sequence) {
  Query q;
  q.from_sequence = sequence;
  q.to_sequence = sequence;
  auto event = store.query(q).next();
  return event ? to_hex(event->chain) : std::string();
}

// What the chain of an upgraded store's events was in record format 1, up
// to `sequence`: each event's format-1 checksum chained from the store's
// base, as a format-1 archive of it holds them (upgrade keeps the base).
std::string format1_chain_through(const Store& store, const StoreStats& stats, std::uint64_t sequence) {
  Sha256 chain = codec::digest_from_hex(stats.base_chain);
  Query q;
  q.from_sequence = stats.base_sequence;
  q.to_sequence = sequence;
  q.verify_on_read = ReadCheck::full;
  std::uint64_t seen = 0;
  for (const RecordedEvent& e : store.query(q)) {
    if (e.schema_version != 1 || e.trace_context) return {};  // not an event of format 1
    chain = codec::chain_next(chain, codec::checksum_v1(e.id, codec::RecordFields::of(e)));
    ++seen;
  }
  if (seen != sequence - stats.base_sequence + 1) return {};
  return to_hex(chain);
}

}  // namespace

static TruncateReport truncate_untraced(Store& store, const EventId& id, const fs::path& archive_dir) {
  const auto start = std::chrono::steady_clock::now();
  const StoreStats stats = store.stats();
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
    if (auto first_kept = store.query(q).next()) cut = first_kept->id.sequence;
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
  const std::string store_chain = manifest.version == stats.format_version
                                      ? chain_at(store, drop_to)
                                      : format1_chain_through(store, stats, drop_to);
  if (store_chain != archived_chain) {
    throw Error(ErrorCode::invalid_argument,
                "archive '" + dir.string() + "' does not hold this store's event " +
                    std::to_string(drop_to) +
                    " (its chain differs): it is another store's archive");
  }
  for (std::uint64_t from = stats.base_sequence; from <= drop_to; from += kEventsPerTransaction) {
    store_access::drop_events(store, std::min(drop_to, from + kEventsPerTransaction - 1), dir.string());
  }
  report.events_dropped = drop_to - stats.base_sequence + 1;
  report.base_sequence = cut;
  report.archive = dir.string();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

TruncateReport Store::truncate_before(const EventId& id, const fs::path& archive_dir) {
  store_access::refuse_read_only(*this);
  return traced_task(store_access::options(*this), "truncate", path(), [&](tracing::Span* span) {
    TruncateReport report = truncate_untraced(*this, id, archive_dir);
    if (span) {
      span->set("lighthouse.archive", archive_dir.string());
      span->set("lighthouse.events", static_cast<std::int64_t>(report.events_dropped));
    }
    return report;
  });
}

}  // namespace lighthouse
