#include "store/query_planner.h"

#include <algorithm>

#include "store/schema.h"
#include "text.h"
#include "store/validation.h"

namespace lighthouse {
namespace {

std::uint64_t sequence_of(std::string_view key) { return schema::decode_event_key(key, "a stored event").sequence; }

// Events in [lo, hi): sequences are gap-free, so the count is the difference
// of the sequences at the two ends.
std::uint64_t count_in_range(MDB_txn* txn, MDB_dbi events, const Key& lo,
                             const std::optional<Key>& hi) {
  lmdb::Cursor cursor(txn, events);
  MDB_val k = lmdb::val(lo), v;
  if (!cursor.seek(k, v, MDB_SET_RANGE)) return 0;
  std::string first(lmdb::view(k));
  if (hi && first >= *hi) return 0;
  std::string last;
  if (hi) {
    MDB_val hk = lmdb::val(*hi), hv;
    bool past = cursor.seek(hk, hv, MDB_SET_RANGE);
    if (!cursor.seek(hk, hv, past ? MDB_PREV : MDB_LAST)) return 0;
    last = lmdb::view(hk);
  } else {
    MDB_val lk, lv;
    cursor.seek(lk, lv, MDB_LAST);
    last = lmdb::view(lk);
  }
  if (last < first) return 0;
  return sequence_of(last) - sequence_of(first) + 1;
}

std::uint64_t dup_count(MDB_txn* txn, MDB_dbi dbi, std::string_view key) {
  lmdb::Cursor cursor(txn, dbi);
  MDB_val k = lmdb::val(key), v;
  if (!cursor.seek(k, v, MDB_SET)) return 0;
  std::size_t count = 0;
  const lmdb::InLmdb inside(mdb_cursor_txn(cursor.get()));
  lmdb::check(mdb_cursor_count(cursor.get(), &count), "mdb_cursor_count");
  return count;
}

void apply_lower(Key& lo, const Key& candidate) { lo = std::max(lo, candidate); }
void apply_upper(std::optional<Key>& hi, const Key& candidate) {
  if (!hi || candidate < *hi) hi = candidate;
}

// Turns the ID, sequence and time bounds into one key range.
void resolve_range(MDB_txn* txn, const Databases& dbs, ResolvedQuery& r) {
  const Query& q = r.query;
  r.lo = Key(EventId::kKeySize, '\0');
  if (q.after_id) {
    if (auto next = key_after(key_of(*q.after_id))) apply_lower(r.lo, *next);
    else r.empty = true;
  }
  if (q.before_id) apply_upper(r.hi, key_of(*q.before_id));
  if (q.since_ns) apply_lower(r.lo, key_of(EventId{*q.since_ns, 0, 0}));
  if (q.until_ns) apply_upper(r.hi, key_of(EventId{*q.until_ns, 0, 0}));
  if (q.from_sequence) {
    if (auto key = seek_sequence(txn, dbs.events, *q.from_sequence)) apply_lower(r.lo, *key);
    else r.empty = true;
  }
  if (q.to_sequence && *q.to_sequence < ~std::uint64_t{0}) {
    if (auto key = seek_sequence(txn, dbs.events, *q.to_sequence + 1)) {
      apply_upper(r.hi, *key);
    } else {
      // Every stored event is within the bound: end after the last one, so
      // that events appended later (with larger sequences) stay out.
      lmdb::Cursor cursor(txn, dbs.events);
      MDB_val k, v;
      if (cursor.seek(k, v, MDB_LAST)) {
        if (auto after = key_after(Key(lmdb::view(k)))) apply_upper(r.hi, *after);
      }
    }
  }
  if (r.hi && *r.hi <= r.lo) r.empty = true;
}

std::string shown(std::string_view s) { return text::quoted(s); }

}  // namespace

Key key_of(const EventId& id) {
  auto key = id.to_key();
  return Key(reinterpret_cast<const char*>(key.data()), key.size());
}

std::optional<Key> key_after(Key key) {
  for (std::size_t i = key.size(); i-- > 0;) {
    auto& byte = reinterpret_cast<unsigned char&>(key[i]);
    if (byte != 0xff) {
      ++byte;
      return key;
    }
    byte = 0;
  }
  return std::nullopt;
}

std::optional<Key> seek_sequence(MDB_txn* txn, MDB_dbi events, std::uint64_t sequence) {
  lmdb::Cursor cursor(txn, events);
  MDB_val k, v;
  if (!cursor.seek(k, v, MDB_LAST)) return std::nullopt;
  const Key last(lmdb::view(k));
  if (sequence_of(last) < sequence) return std::nullopt;
  cursor.seek(k, v, MDB_FIRST);
  const Key first(lmdb::view(k));
  if (sequence_of(first) >= sequence) return first;
  // Invariant: the first key at or after timestamp `lo` has a smaller
  // sequence; the first key at or after `hi` has sequence >= `sequence`.
  std::uint64_t lo = schema::decode_event_key(first, "the first event").timestamp_ns;
  std::uint64_t hi = schema::decode_event_key(last, "the last event").timestamp_ns;
  Key found = last;
  while (lo + 1 < hi) {
    std::uint64_t mid = lo + (hi - lo) / 2;
    Key probe = key_of(EventId{mid, 0, 0});
    MDB_val pk = lmdb::val(probe), pv;
    cursor.seek(pk, pv, MDB_SET_RANGE);  // exists: last has timestamp >= hi > mid
    if (sequence_of(lmdb::view(pk)) >= sequence) {
      hi = mid;
      found = lmdb::view(pk);
    } else {
      lo = mid;
    }
  }
  return found;
}

bool ResolvedQuery::matches(const RecordedEvent& e) const {
  if (!query.types.empty() &&
      std::find(query.types.begin(), query.types.end(), e.type) == query.types.end()) {
    return false;
  }
  if (!query.type_prefix.empty() && e.type.compare(0, query.type_prefix.size(), query.type_prefix) != 0) {
    return false;
  }
  if (query.aggregate && e.aggregate != *query.aggregate) return false;
  return true;
}

// The base after truncation, when there is one.
std::optional<Truncation> truncated_base(MDB_txn* txn, const Databases& dbs) {
  Truncation t;
  t.base_sequence = schema::read_u64(txn, dbs, schema::meta::kBaseSequence, 1);
  if (t.base_sequence <= 1) return std::nullopt;
  std::string_view v;
  if (lmdb::get(txn, dbs.meta, schema::meta::kBaseArchive, v)) t.archive = std::string(v);
  return t;
}

ResolvedQuery plan_query(MDB_txn* txn, const Databases& dbs, const Query& query, const Options& options) {
  const Limits& limits = options.limits;
  if (query.verify_on_read && *query.verify_on_read > ReadCheck::full) {
    throw Error(ErrorCode::invalid_argument, "query verify_on_read " +
                                                 std::to_string(static_cast<unsigned>(*query.verify_on_read)) +
                                                 " is not off, fast or full");
  }
  if (query.direction != Direction::forward && query.direction != Direction::reverse) {
    throw Error(ErrorCode::invalid_argument, "query direction " +
                                                 std::to_string(static_cast<unsigned>(query.direction)) +
                                                 " is neither forward nor reverse");
  }
  for (const auto& type : query.types) validation::check_name("type filter", type, limits, false, true);
  if (query.aggregate) {
    validation::check_name("aggregate filter", *query.aggregate, limits, false, true);
  }
  if (query.type_prefix.size() > limits.max_name_bytes) {
    validation::check_name("type prefix", query.type_prefix, limits, true, true);
  }
  ResolvedQuery r;
  r.query = query;
  r.verify_on_read = query.verify_on_read.value_or(options.verify_on_read);
  resolve_range(txn, dbs, r);
  if (auto base = truncated_base(txn, dbs)) {
    // The range reaches below the base iff its lower bound is before the
    // first stored event (sequence and ID bounds alike become key bounds).
    lmdb::Cursor cursor(txn, dbs.events);
    MDB_val k, v;
    bool below = !cursor.seek(k, v, MDB_FIRST) || std::string_view(r.lo) < lmdb::view(k);
    if (query.from_sequence && *query.from_sequence >= base->base_sequence) below = false;
    if (below && !r.empty) r.truncation = base;
  }

  r.plan.source = QueryPlan::Source::events_range;
  r.plan.estimate = r.empty ? 0 : count_in_range(txn, dbs.events, r.lo, r.hi);
  r.plan.description = "events range: " + std::to_string(r.plan.estimate) + " events";
  if (r.empty) return r;

  if (query.aggregate) {
    std::uint64_t n = dup_count(txn, dbs.by_aggregate, *query.aggregate);
    if (n < r.plan.estimate) {
      r.plan = {QueryPlan::Source::by_aggregate, n,
                "by_aggregate " + shown(*query.aggregate) + ": " + std::to_string(n) + " entries"};
    }
  }
  if (!query.types.empty() || !query.type_prefix.empty()) {
    std::vector<std::string> types;
    if (!query.types.empty()) {
      for (const auto& t : query.types) {
        if (t.compare(0, query.type_prefix.size(), query.type_prefix) == 0) types.push_back(t);
      }
    } else {
      lmdb::Cursor cursor(txn, dbs.by_type);
      MDB_val k = lmdb::val(query.type_prefix), v;
      for (bool ok = cursor.seek(k, v, MDB_SET_RANGE); ok; ok = cursor.seek(k, v, MDB_NEXT_NODUP)) {
        std::string_view type = lmdb::view(k);
        if (type.substr(0, query.type_prefix.size()) != query.type_prefix) break;
        types.emplace_back(type);
      }
    }
    std::sort(types.begin(), types.end());
    types.erase(std::unique(types.begin(), types.end()), types.end());
    std::uint64_t n = 0;
    for (const auto& t : types) n += dup_count(txn, dbs.by_type, t);
    if (n < r.plan.estimate) {
      std::string which = query.types.empty() ? "prefix " + shown(query.type_prefix)
                                              : std::to_string(types.size()) + " type(s)";
      r.plan = {QueryPlan::Source::by_type, n,
                "by_type " + which + ": " + std::to_string(n) + " entries"};
      r.types = std::move(types);
    }
  }
  return r;
}

ResolvedQuery plan_aggregate(MDB_txn* txn, const Databases& dbs, const std::string& aggregate,
                             std::uint64_t from_version, std::uint64_t to_version, const Options& options) {
  const Limits& limits = options.limits;
  validation::check_name("aggregate", aggregate, limits, false, true);
  if (to_version != 0 && to_version < from_version) {
    throw Error(ErrorCode::invalid_argument, "to_version " + std::to_string(to_version) +
                                                 " is below from_version " +
                                                 std::to_string(from_version));
  }
  ResolvedQuery r;
  r.query.aggregate = aggregate;
  r.verify_on_read = options.verify_on_read;
  r.lo = Key(EventId::kKeySize, '\0');
  r.min_version = std::max<std::uint64_t>(from_version, 1);
  r.max_version = to_version;
  std::uint64_t n = dup_count(txn, dbs.by_aggregate, aggregate);
  if (auto base = truncated_base(txn, dbs)) {
    // Versions before the aggregate's first stored one were dropped.
    lmdb::Cursor cursor(txn, dbs.by_aggregate);
    MDB_val k = lmdb::val(aggregate), v;
    std::uint64_t first = 0;
    if (cursor.seek(k, v, MDB_SET)) first = schema::decode_aggregate_entry(lmdb::view(v), aggregate).version;
    std::string_view kept;
    bool all_dropped = first == 0 && lmdb::get(txn, dbs.aggregate_heads, aggregate, kept);
    if (all_dropped || (first > 1 && r.min_version < first)) r.truncation = base;
  }
  r.plan = {QueryPlan::Source::by_aggregate, n,
            "by_aggregate " + shown(aggregate) + ": " + std::to_string(n) + " entries"};
  return r;
}

std::string_view to_string(QueryPlan::Source source) noexcept {
  switch (source) {
    case QueryPlan::Source::events_range: return "events_range";
    case QueryPlan::Source::by_type: return "by_type";
    case QueryPlan::Source::by_aggregate: return "by_aggregate";
  }
  return "unknown";
}

}  // namespace lighthouse
