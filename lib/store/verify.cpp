#include "store/verify.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <map>
#include <optional>

#include "codec/record.h"
#include "store/damage_mark.h"
#include "store/schema.h"
#include "text.h"

namespace lighthouse {
namespace {

std::string shown(std::string_view s) { return text::quoted(s); }

std::string id_text(std::string_view key) {
  return key.size() == EventId::kKeySize ? EventId::from_key(key).to_string()
                                         : "key of " + std::to_string(key.size()) + " bytes";
}

class Verifier {
 public:
  Verifier(MDB_txn* txn, const Databases& dbs, const VerifyOptions& options)
      : txn_(txn), dbs_(dbs), options_(options) {}

  VerifyReport run() {
    base_ = meta(schema::meta::kBaseSequence, 1);
    if (auto anchor = digest(schema::meta::kBaseChain)) anchor_ = *anchor;
    check_events();
    check_by_type();
    check_by_aggregate();
    check_idempotency();
    check_meta();
    return std::move(report_);
  }

 private:
  void problem(const char* category, std::string subject, std::string detail) {
    ++report_.problem_count;
    if (report_.problems.size() < options_.max_problems) {
      report_.problems.push_back({category, std::move(subject), std::move(detail)});
    }
  }

  bool has_dup(MDB_dbi dbi, std::string_view key, std::string_view value) {
    lmdb::Cursor cursor(txn_, dbi);
    MDB_val k = lmdb::val(key), v = lmdb::val(value);
    return cursor.seek(k, v, MDB_GET_BOTH);
  }

  // Every event: decodes, checksum, chain, order, sequence, versions, and its
  // presence in each index it belongs to.
  void check_events() {
    lmdb::Cursor cursor(txn_, dbs_.events);
    MDB_val k, v;
    Sha256 chain = anchor_;  // the chain the first stored event follows
    bool chain_known = true;
    EventId previous{};
    bool first = true;
    for (bool ok = cursor.seek(k, v, MDB_FIRST); ok; ok = cursor.seek(k, v, MDB_NEXT)) {
      ++report_.events_checked;
      std::string_view key = lmdb::view(k);
      if (key.size() != EventId::kKeySize) {
        problem("record", id_text(key), "event key is not 20 bytes");
        chain_known = false;
        continue;
      }
      EventId id = EventId::from_key(key);
      if (!first) {
        if (id.timestamp_ns <= previous.timestamp_ns) {
          problem("order", id.to_string(), "timestamp not after that of " + previous.to_string());
        }
        if (id.sequence != previous.sequence + 1) {
          problem("sequence", id.to_string(),
                  "follows sequence " + std::to_string(previous.sequence) + " (a gap or a repeat)");
        }
      } else if (id.sequence != base_) {
        problem("sequence", id.to_string(),
                "the first event's sequence is not the base " + std::to_string(base_));
      }
      first = false;
      previous = id;
      last_ = id;
      RecordedEvent e;
      std::string_view stored_tail;
      try {
        e = codec::decode_record(id, lmdb::view(v), &stored_tail);
      } catch (const Error& error) {
        problem("record", id.to_string(), error.what());
        chain_known = false;
        continue;
      }
      // One problem per damaged record: the checksum's when the content is
      // damaged, else the fast check's (damage outside the content).
      if (!codec::checksum_matches(e, stored_tail)) {
        problem("checksum", id.to_string(), "content does not match its checksum");
      } else if (!codec::fast_check_matches(id, lmdb::view(v))) {
        problem("record", id.to_string(), "stored record does not match its fast check");
      }
      if (chain_known && codec::chain_next(chain, e.checksum) != e.chain) {
        problem("chain", id.to_string(), "chain value does not follow from the previous event");
      }
      chain = e.chain;
      chain_known = true;
      last_chain_ = e.chain;
      check_event_indexes(key, e);
    }
  }

  void check_event_indexes(std::string_view key, const RecordedEvent& e) {
    if (!has_dup(dbs_.by_type, e.type, key)) {
      problem("by_type", e.id.to_string(), "missing from by_type under " + shown(e.type));
    }
    if (!e.aggregate.empty()) {
      auto [it, first_seen] = versions_.try_emplace(e.aggregate, 0);
      std::uint64_t& last = it->second;
      // After truncation an aggregate's first stored version may be past 1.
      if (first_seen && base_ > 1) last = e.aggregate_version - 1;
      if (e.aggregate_version != last + 1) {
        problem("aggregate_version", e.id.to_string(),
                "version " + std::to_string(e.aggregate_version) + " of " + shown(e.aggregate) +
                    " follows version " + std::to_string(last));
      }
      last = e.aggregate_version;
      if (!has_dup(dbs_.by_aggregate, e.aggregate, schema::encode_aggregate_entry(e.aggregate_version, key))) {
        problem("by_aggregate", e.id.to_string(),
                "missing from by_aggregate under " + shown(e.aggregate));
      }
    } else if (e.aggregate_version != 0) {
      problem("aggregate_version", e.id.to_string(), "a version without an aggregate");
    }
    if (e.idempotency_key) {
      ++keyed_events_;
      std::string_view entry;
      if (!lmdb::get(txn_, dbs_.by_idempotency_key, *e.idempotency_key, entry)) {
        problem("idempotency", e.id.to_string(),
                "idempotency key " + shown(*e.idempotency_key) + " is not in the index");
      } else if (entry.substr(0, EventId::kKeySize) != key) {
        problem("idempotency", e.id.to_string(),
                "idempotency key " + shown(*e.idempotency_key) + " names another event");
      }
    }
  }

  // Every by_type entry names an existing event of that type.
  void check_by_type() {
    lmdb::Cursor cursor(txn_, dbs_.by_type);
    MDB_val k, v;
    for (bool ok = cursor.seek(k, v, MDB_FIRST); ok; ok = cursor.seek(k, v, MDB_NEXT)) {
      ++report_.index_entries_checked;
      std::string_view type = lmdb::view(k), key = lmdb::view(v);
      std::string subject = "by_type " + shown(type) + " -> " + id_text(key);
      codec::RecordHead head;
      std::string_view record;
      if (!lmdb::get(txn_, dbs_.events, key, record)) {
        problem("by_type", subject, "names an event that is not stored");
      } else if (codec::peek_record(record, head) && head.type != type) {
        problem("by_type", subject, "names an event of type " + shown(head.type));
      }
    }
  }

  // Every by_aggregate entry names an existing event of that aggregate and version.
  void check_by_aggregate() {
    lmdb::Cursor cursor(txn_, dbs_.by_aggregate);
    MDB_val k, v;
    for (bool ok = cursor.seek(k, v, MDB_FIRST); ok; ok = cursor.seek(k, v, MDB_NEXT)) {
      ++report_.index_entries_checked;
      std::string_view aggregate = lmdb::view(k);
      schema::AggregateEntry entry;
      try {
        entry = schema::decode_aggregate_entry(lmdb::view(v), aggregate);
      } catch (const Error&) {
        problem("by_aggregate", "by_aggregate " + shown(aggregate), "entry is not 28 bytes");
        continue;
      }
      const std::uint64_t version = entry.version;
      const std::string_view key = entry.key;
      std::string subject = "by_aggregate " + shown(aggregate) + " v" + std::to_string(version) +
                            " -> " + id_text(key);
      codec::RecordHead head;
      std::string_view record;
      if (!lmdb::get(txn_, dbs_.events, key, record)) {
        problem("by_aggregate", subject, "names an event that is not stored");
      } else if (codec::peek_record(record, head) &&
                 (head.aggregate != aggregate || head.aggregate_version != version)) {
        problem("by_aggregate", subject,
                "names version " + std::to_string(head.aggregate_version) + " of " +
                    shown(head.aggregate));
      }
    }
  }

  void check_idempotency() {
    lmdb::Cursor cursor(txn_, dbs_.by_idempotency_key);
    MDB_val k, v;
    std::uint64_t entries = 0;
    for (bool ok = cursor.seek(k, v, MDB_FIRST); ok; ok = cursor.seek(k, v, MDB_NEXT)) {
      ++report_.index_entries_checked;
      ++entries;
      std::string_view name = lmdb::view(k);
      std::string subject = "idempotency key " + shown(name);
      schema::IdempotencyEntry entry;
      try {
        entry = schema::decode_idempotency_entry(lmdb::view(v), name);
      } catch (const Error&) {
        problem("idempotency", subject, "entry is not 52 bytes");
        continue;
      }
      if (entry.dropped_version) {
        // The key of a truncated event: that event must be below the base.
        --entries;
        std::string_view record;
        if (lmdb::get(txn_, dbs_.events, entry.key, record) || EventId::from_key(entry.key).sequence >= base_) {
          problem("idempotency", subject,
                  "marks event " + id_text(entry.key) + " as truncated, but it is not below the base");
        }
        continue;
      }
      std::string_view key = entry.key, record;
      if (!lmdb::get(txn_, dbs_.events, key, record)) {
        problem("idempotency", subject, "names event " + id_text(key) + ", which is not stored");
        continue;
      }
      try {
        RecordedEvent e = codec::decode_record(schema::decode_event_key(key, "an idempotency entry"), record);
        if (e.idempotency_key != std::string(name)) {
          problem("idempotency", subject, "names event " + id_text(key) + ", which has another key");
        } else if (schema::digest_view(codec::content_hash(codec::RecordFields::of(e))) != entry.content_hash) {
          problem("idempotency", subject, "content hash differs from event " + id_text(key));
        }
      } catch (const Error&) {
        // The event itself is reported by check_events.
      }
    }
    if (entries != keyed_events_) {
      problem("idempotency", "by_idempotency_key",
              std::to_string(entries) + " entries for " + std::to_string(keyed_events_) +
                  " events with a key");
    }
  }

  // A meta value through the schema's strict reads: a wrong size is a
  // problem reported (and the value taken as `missing`), not a stop.
  std::uint64_t meta(std::string_view key, std::uint64_t missing = 0) {
    try {
      return schema::read_u64(txn_, dbs_, key, missing);
    } catch (const Error& error) {
      problem("meta", std::string(key), error.what());
      return missing;
    }
  }
  std::optional<Sha256> digest(std::string_view key) {
    try {
      return schema::read_digest(txn_, dbs_, key);
    } catch (const Error& error) {
      problem("meta", std::string(key), error.what());
      return std::nullopt;
    }
  }

  void check_meta() {
    // An import that was interrupted left part of an archive: the store is
    // not the archive's copy, and every command refuses it.
    std::string_view importing;
    if (lmdb::get(txn_, dbs_.meta, schema::meta::kImportInProgress, importing)) {
      problem("import", "import_in_progress",
              "an import into this store was interrupted: it holds part of an archive (remove the store and import "
              "again)");
    }
    std::uint64_t last_sequence = meta(schema::meta::kLastSequence);
    const std::uint64_t expected_last = report_.events_checked > 0 ? last_.sequence : base_ - 1;
    if (last_sequence != expected_last) {
      problem("meta", "last_sequence",
              std::to_string(last_sequence) + ", but the store's events end at " +
                  std::to_string(expected_last));
    }
    std::uint64_t last_ts = meta(schema::meta::kLastTimestamp);
    if (report_.events_checked > 0 && last_ts != last_.timestamp_ns) {
      problem("meta", "last_timestamp_ns",
              std::to_string(last_ts) + ", but the last event has " + std::to_string(last_.timestamp_ns));
    }
    const std::optional<Sha256> chain = digest(schema::meta::kLastChain);
    if (report_.events_checked > 0 && chain != last_chain_) {
      problem("meta", "last_chain", "differs from the chain of the last event");
    }
    // Aggregates whose events were all truncated keep their head in
    // aggregate_heads; it must not be behind their events.
    std::map<std::string, std::uint64_t> aggregates = versions_;
    lmdb::Cursor cursor(txn_, dbs_.aggregate_heads);
    MDB_val k, v;
    for (bool ok = cursor.seek(k, v, MDB_FIRST); ok; ok = cursor.seek(k, v, MDB_NEXT)) {
      std::string name(lmdb::view(k));
      bool damaged = false;
      std::uint64_t head = 0;
      try {
        head = schema::decode_aggregate_head(lmdb::view(v), name);
      } catch (const Error&) {
        damaged = true;
      }
      auto it = versions_.find(name);
      if (damaged || (it != versions_.end() && head < it->second)) {
        problem("meta", "aggregate_heads " + shown(name), "head is behind the aggregate's events");
      }
      aggregates.emplace(name, head);
    }
    std::uint64_t count = meta(schema::meta::kAggregateCount);
    if (count != aggregates.size()) {
      problem("meta", "aggregate_count",
              std::to_string(count) + ", but " + std::to_string(aggregates.size()) +
                  " aggregates have events");
    }
  }

  MDB_txn* txn_;
  const Databases& dbs_;
  VerifyOptions options_;
  VerifyReport report_;
  std::map<std::string, std::uint64_t> versions_;  // aggregate -> last version seen
  std::uint64_t keyed_events_ = 0;
  std::uint64_t base_ = 1;
  Sha256 anchor_{};
  EventId last_{};
  Sha256 last_chain_{};
};

}  // namespace

VerifyReport verify_snapshot(MDB_txn* txn, const Databases& dbs, const VerifyOptions& options) {
  return Verifier(txn, dbs, options).run();
}

bool structure_damaged(const VerifyReport& report) {
  return std::any_of(report.problems.begin(), report.problems.end(),
                     [](const IntegrityProblem& p) { return p.category == "structure"; });
}

void add_structure_problems(const lmdb::StructureReport& structure, VerifyReport& report) {
  report.pages_checked = structure.pages;
  for (const auto& p : structure.problems) {
    std::string subject = p.page == lmdb::kNoPage ? "data.mdb" : "page " + std::to_string(p.page);
    if (!p.database.empty()) subject += " (" + p.database + ")";
    report.problems.push_back({"structure", std::move(subject), p.detail});
  }
  report.problem_count += structure.problem_count;
}

VerifyReport check_store_file(const std::filesystem::path& store) {
  const std::filesystem::path data = store / "data.mdb";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(data, ec)) throw Error(ErrorCode::not_found, "no store at '" + store.string() + "'");
  lmdb::StructureReport structure;
  // Nothing pins a snapshot here: a problem counts only when it is there on
  // three walks, a few milliseconds apart.
  for (int walk = 0; walk < 3; ++walk) {
    if (walk > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    structure = lmdb::walk_structure(data);
    if (structure.ok()) break;
  }
  VerifyReport report;
  add_structure_problems(structure, report);
  return report;
}

VerifyReport verify_store(const Environment& env, const Databases& dbs, const VerifyOptions& options) {
  const Environment::CheckedSnapshot checked = env.check_structure(options.max_problems);
  if (!checked.structure.ok()) {
    VerifyReport report;
    add_structure_problems(checked.structure, report);
    damage_mark::set(env.path(), "verify found the file's structure damaged: " + Environment::describe(checked.structure));
    return report;
  }
  // The rest on the snapshot just walked: LMDB reads only checked pages.
  VerifyReport report = verify_snapshot(checked.read->get(), dbs, options);
  report.pages_checked = checked.structure.pages;
  return report;
}

}  // namespace lighthouse
