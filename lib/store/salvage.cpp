// Store::salvage(): a new store from what can still be read of a damaged
// one, read from its pages directly (lmdb/recovery.h), never through LMDB.
#include "store/salvage.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "codec/record.h"
#include "files.h"
#include "lmdb/recovery.h"
#include "store/archive_access.h"
#include "store/store_impl.h"
#include "store/write_txn.h"

namespace lighthouse {
namespace fs = std::filesystem;
namespace store_copy {
namespace {
std::uint64_t be(std::string_view v) { return schema::read_be(v, v.size()); }

}  // namespace

OldMeta read_old_meta(const fs::path& data) {
  OldMeta m;
  for (const auto& p : lmdb::recover_database(data, schema::kMeta, lmdb::ScanPages::never).pairs) {
    const std::string_view k = p.key, v = p.value;
    if (k == schema::meta::kBaseSequence && v.size() == 8) m.base_sequence = be(v);
    if (k == schema::meta::kLastSequence && v.size() == 8) m.last_sequence = be(v);
    if (k == schema::meta::kNodeId && v.size() == 4) m.node_id = static_cast<std::uint32_t>(be(v));
    if (k == schema::meta::kBaseArchive) m.base_archive = p.value;
    if (k == schema::meta::kBaseChain && v.size() == 32) {
      Sha256 c;
      std::copy(v.begin(), v.end(), reinterpret_cast<char*>(c.data()));
      m.base_chain = c;
    }
    if (k.substr(0, schema::meta::kConsumerPrefix.size()) == schema::meta::kConsumerPrefix && v.size() == 20) {
      m.checkpoints.emplace(std::string(k.substr(schema::meta::kConsumerPrefix.size())), EventId::from_key(v));
    }
  }
  return m;
}

}  // namespace store_copy

namespace {
using store_copy::OldMeta;

// Every event record that decodes and verifies, by sequence (a sequence may
// have several: stale copies in free pages, or an uncommitted write).
struct Candidates {
  std::map<std::uint64_t, std::vector<RecordedEvent>> by_sequence;
  std::uint64_t damaged = 0;
};

Candidates read_events(const lmdb::Recovery& events) {
  Candidates c;
  for (const auto& p : events.pairs) {
    if (p.key.size() != EventId::kKeySize) continue;
    try {
      const EventId id = EventId::from_key(p.key);
      RecordedEvent e = codec::read_record(id, p.value, ReadCheck::full);
      auto& at = c.by_sequence[id.sequence];
      // Events the tree reaches come first.
      if (p.reachable) at.insert(at.begin(), std::move(e));
      else at.push_back(std::move(e));
    } catch (const Error&) {
      if (p.reachable) ++c.damaged;  // a page scan meets other databases' pairs too
    }
  }
  return c;
}

// The longest history from the base that continues the chain; what follows
// the first gap; what is lost.
struct History {
  std::vector<RecordedEvent> kept, after_gap;
  std::vector<SequenceRange> lost;
};

History link(Candidates& c, std::uint64_t base, Sha256 chain, std::uint64_t last) {
  History h;
  std::uint64_t s = base, timestamp = 0;
  for (; s <= last; ++s) {
    auto it = c.by_sequence.find(s);
    if (it == c.by_sequence.end()) break;
    auto linked = std::find_if(it->second.begin(), it->second.end(), [&](const RecordedEvent& e) {
      return codec::chain_next(chain, e.checksum) == e.chain && e.id.timestamp_ns > timestamp;
    });
    if (linked == it->second.end()) break;
    chain = linked->chain;
    timestamp = linked->id.timestamp_ns;
    h.kept.push_back(std::move(*linked));
  }
  for (; s <= last; ++s) {
    auto it = c.by_sequence.find(s);
    if (it != c.by_sequence.end()) {
      h.after_gap.push_back(std::move(it->second.front()));
    } else if (!h.lost.empty() && h.lost.back().last + 1 == s) {
      ++h.lost.back().last;
    } else {
      h.lost.push_back({s, s});
    }
  }
  return h;
}

}  // namespace

namespace store_copy {

void write_base(Store::Impl& impl, const OldMeta& old, std::uint64_t base, const Sha256& anchor,
                const std::map<std::string, std::uint64_t>& first_versions, const fs::path& data) {
  std::map<std::string, std::uint64_t> heads;
  for (const auto& p : lmdb::recover_database(data, schema::kAggregateHeads, lmdb::ScanPages::never).pairs) {
    if (p.value.size() == 8) heads[p.key] = schema::read_be(p.value, 8);
  }
  // An aggregate's first kept event names its head before the base.
  for (const auto& [aggregate, version] : first_versions) {
    if (!heads.count(aggregate) && version > 1) heads[aggregate] = version - 1;
  }
  std::vector<std::pair<std::string, std::string>> dropped_keys;
  for (const auto& p : lmdb::recover_database(data, schema::kByIdempotencyKey, lmdb::ScanPages::never).pairs) {
    if (p.value.size() == schema::kDroppedIdempotencyEntrySize) dropped_keys.emplace_back(p.key, p.value);
  }
  WritePath& writer = impl.writer();
  const Databases& dbs = impl.dbs();
  writer.run_exclusive(ExclusiveTask::import, [&] {
    writer.write_exclusive([&](MDB_txn* t) {
      if (base > 1) {
        lmdb::put(t, dbs.meta, schema::meta::kBaseSequence, schema::be64(base));
        lmdb::put(t, dbs.meta, schema::meta::kBaseChain, schema::digest_view(anchor));
        lmdb::put(t, dbs.meta, schema::meta::kBaseArchive, old.base_archive);
      }
      for (const auto& [aggregate, version] : heads) lmdb::put(t, dbs.aggregate_heads, aggregate, schema::be64(version));
      for (const auto& [key, value] : dropped_keys) lmdb::put(t, dbs.by_idempotency_key, key, value);
      schema::Counters c;
      c.last_sequence = base - 1;
      c.last_chain = anchor;
      c.aggregate_count = heads.size();
      schema::write_counters(t, dbs, c);
    });
  });
}

}  // namespace store_copy

namespace {

void import_kept(Store& store, const std::vector<RecordedEvent>& kept, Sha256 chain) {
  constexpr std::size_t kChunk = 10'000;  // events a transaction
  for (std::size_t from = 0; from < kept.size(); from += kChunk) {
    const auto begin = kept.begin() + static_cast<std::ptrdiff_t>(from);
    std::vector<RecordedEvent> chunk(begin, begin + static_cast<std::ptrdiff_t>(std::min(kChunk, kept.size() - from)));
    for (RecordedEvent& e : chunk) codec::to_format2(e, chain);  // a format-1 store's events are salvaged into format 2
    store_access::import_events(store, chunk);
  }
}

std::map<std::string, std::uint64_t> first_versions(const std::vector<RecordedEvent>& kept) {
  std::map<std::string, std::uint64_t> first;
  for (const auto& e : kept) {
    if (!e.aggregate.empty()) first.emplace(e.aggregate, e.aggregate_version);
  }
  return first;
}

// The events after the gap: entries of the record's length (u32 BE), the
// event's key (20 bytes) and its stored record (docs/formats.md, "Salvage
// files").
void write_after_gap(const fs::path& file, const std::vector<RecordedEvent>& events) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(ErrorCode::io_error, "cannot create '" + file.string() + "': " + std::strerror(errno));
  std::string out, record;
  for (const auto& e : events) {
    codec::encode_record(record, e.id, codec::RecordFields::of(e), e.checksum, e.chain, {}, e.record_format);
    const auto key = e.id.to_key();
    out += schema::be32(static_cast<std::uint32_t>(record.size()));
    out += schema::key_view(key);
    out += record;
  }
  const bool ok = ::write(fd, out.data(), out.size()) == static_cast<ssize_t>(out.size()) && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) throw Error(ErrorCode::io_error, "cannot write '" + file.string() + "': " + write_failure(err, file.parent_path()));
}

// Writes the new store and the after-gap file.
void salvage_into(const fs::path& destination, const fs::path& data, const OldMeta& old, std::uint64_t base,
                  const Sha256& anchor, History& history, SalvageReport& report) {
  Options options;
  options.node_id = old.node_id;
  options.health.window_seconds = 0;
  Store store = Store::open(destination, options);
  Store::Impl& impl = StoreAccess::impl(store);
  store_copy::write_base(impl, old, base, anchor, first_versions(history.kept), data);
  import_kept(store, history.kept, anchor);
  if (!history.kept.empty()) {
    report.first_sequence = history.kept.front().id.sequence;
    report.last_sequence = history.kept.back().id.sequence;
    for (const auto& [consumer, position] : old.checkpoints) {
      if (position.sequence < base || position.sequence > report.last_sequence) continue;
      store.set_checkpoint(consumer, position);
      ++report.checkpoints_salvaged;
    }
  }
  report.events_salvaged = history.kept.size();
  report.lost = history.lost;
  for (const auto& r : history.lost) report.events_lost += r.last - r.first + 1;
  report.events_after_gap = history.after_gap.size();
  if (!history.after_gap.empty()) {
    report.after_gap_file = (destination / "salvaged-after-gap.records").string();
    write_after_gap(report.after_gap_file, history.after_gap);
  }
  const VerifyReport verified = store.verify();
  if (!verified.ok()) {
    throw Error(ErrorCode::internal, "the salvaged store in '" + destination.string() + "' does not verify: " +
                                         verified.problems.front().category + " " + verified.problems.front().detail);
  }
  store.close();
}

}  // namespace

SalvageReport salvage_store(const fs::path& damaged, const fs::path& given) {
  std::error_code ec;
  const fs::path data = damaged / "data.mdb";
  if (!fs::is_regular_file(data, ec)) throw Error(ErrorCode::not_found, "no store at '" + damaged.string() + "'");
  const fs::path source = fs::canonical(damaged, ec);
  const fs::path destination = directory_path(fs::absolute(given));
  check_copy_destination(destination, source, "salvage");

  const OldMeta old = store_copy::read_old_meta(data);
  lmdb::Recovery events = lmdb::recover_database(data, schema::kEvents, lmdb::ScanPages::when_tree_damaged, EventId::kKeySize);
  Candidates candidates = read_events(events);
  if (candidates.damaged != 0 && !events.scanned) {
    // A damaged record in a whole tree: an old copy in a free page may
    // still hold it.
    events = lmdb::recover_database(data, schema::kEvents, lmdb::ScanPages::always, EventId::kKeySize);
    candidates = read_events(events);
  }
  const std::uint64_t base = old.base_sequence.value_or(1);
  const Sha256 anchor = old.base_chain.value_or(Sha256{});
  const std::uint64_t last =
      old.last_sequence.value_or(candidates.by_sequence.empty() ? 0 : candidates.by_sequence.rbegin()->first);
  History history = link(candidates, base, anchor, last);

  SalvageReport report;
  report.destination = destination.string();
  report.records_damaged = candidates.damaged;
  report.pages_unreadable = events.unreadable_pages;
  report.scanned_pages = events.scanned;
  const bool existed = fs::exists(destination, ec);
  try {
    salvage_into(destination, data, old, base, anchor, history, report);
  } catch (...) {
    // A salvage that fails leaves nothing: not a store that might pass for
    // the salvaged one.
    if (!existed) {
      fs::remove_all(destination, ec);
    } else {
      for (const auto& entry : fs::directory_iterator(destination, ec)) fs::remove_all(entry.path(), ec);
    }
    throw;
  }
  return report;
}

}  // namespace lighthouse
