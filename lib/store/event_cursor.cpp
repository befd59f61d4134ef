#include "store/event_cursor.h"

#include <utility>

#include "codec/record.h"
#include "store/clock.h"
#include "store/read_path.h"
#include "store/schema.h"

namespace lighthouse {
namespace {

// A chunk ends after this many events, or after visiting this many index
// entries (so a selective filter does not hold a read transaction long).
constexpr std::size_t kChunkEvents = 256;
constexpr std::size_t kChunkVisits = 4096;

}  // namespace

EventCursor::Impl::Impl(std::shared_ptr<Store::Impl> owner, const ReadPath& reader, ResolvedQuery query)
    : owner_(std::move(owner)), reader_(reader), q_(std::move(query)) {
  exhausted_ = q_.empty;
}

EventCursor::Impl::~Impl() {
  end_span();
  // A query's time: planning and every chunk it read.
  if (reader_.monitor()) reader_.monitor()->record_query(spent_ns_, returned_);
}

void EventCursor::Impl::end_span() {
  if (!span_.recording()) return;
  span_.set("lighthouse.events_returned", static_cast<std::int64_t>(returned_));
  span_.set("lighthouse.exhausted", exhausted_);
  span_.end();
}

void EventCursor::Impl::add_time(std::chrono::steady_clock::time_point start) {
  spent_ns_ += ns_since(start);
}

std::optional<RecordedEvent> EventCursor::Impl::next() {
  RecordedEvent* e = advance();
  if (e == nullptr) return std::nullopt;
  return std::move(*e);
}

bool EventCursor::Impl::next(RecordedEvent& event) {
  RecordedEvent* e = advance();
  if (e == nullptr) return false;
  std::swap(event, *e);
  return true;
}

RecordedEvent* EventCursor::Impl::advance() {
  for (;;) {
    if (reader_.env().closed()) {
      throw Error(ErrorCode::closed, "store '" + reader_.env().path().string() + "' is closed");
    }
    if (taken_ < filled_) {
      ++returned_;
      return &buffer_[taken_++];
    }
    taken_ = filled_ = 0;  // the events stay, for their storage
    if (pending_) {
      try {
        std::rethrow_exception(std::exchange(pending_, nullptr));
      } catch (const Error& error) {
        if (error.code() == ErrorCode::corruption) reader_.note_corruption(error.what());
        span_.set_error(to_string(error.code()), error.what());
        end_span();
        throw;
      }
    }
    if (exhausted_) {
      end_span();
      return nullptr;
    }
    fill();
  }
}

void EventCursor::Impl::fill() {
  const auto start = std::chrono::steady_clock::now();
  struct Timer {
    Impl* self;
    std::chrono::steady_clock::time_point start;
    ~Timer() { self->add_time(start); }
  } timer{this, start};
  auto lock = reader_.env().use();
  auto read = reader_.env().begin_read();
  visits_ = 0;
  switch (q_.plan.source) {
    case QueryPlan::Source::events_range: fill_range(read->get()); break;
    case QueryPlan::Source::by_aggregate:
      try {
        fill_aggregate(read->get());
      } catch (const Error& error) {
        // A damaged index entry: the walk cannot go on past it.
        if (error.code() != ErrorCode::corruption) throw;
        pending_ = std::current_exception();
        finish();
      }
      break;
    case QueryPlan::Source::by_type: fill_types(read->get()); break;
  }
}

bool EventCursor::Impl::offer(std::string_view key, std::string_view value) {
  position_ = Key(key);
  ++visits_;
  try {
    const EventId id = schema::decode_event_key(key, "a stored event");
    // Past the replication high-water mark (quorum mode): every later
    // event of a forward walk is too (sequences grow with keys and versions).
    if (id.sequence > q_.max_sequence) {
      if (forward()) {
        finish();
        return false;
      }
      return visits_ < kChunkVisits;
    }
    // The fast check comes before anything is decoded or decompressed; the
    // SHA-256 (`full`, or a format-1 record's only check) only for the
    // events the query returns.
    if (q_.verify_on_read != ReadCheck::off) codec::require_fast_check(id, key, value);
    std::string_view stored_tail;
    if (filled_ == buffer_.size()) buffer_.emplace_back();
    RecordedEvent& e = buffer_[filled_];
    codec::decode_record_into(id, value, &stored_tail, e);
    if (q_.matches(e)) {
      if (q_.verify_on_read == ReadCheck::full ||
          (q_.verify_on_read == ReadCheck::fast && e.record_format == codec::kRecordFormat1)) {
        codec::verify_checksum(e, stored_tail);
      }
      ++filled_;
      if (q_.query.limit != 0 && ++emitted_ >= q_.query.limit) {
        exhausted_ = true;
        return false;
      }
    }
  } catch (const Error&) {
    pending_ = std::current_exception();  // delivered after the events before it
    return false;
  }
  return filled_ < kChunkEvents && visits_ < kChunkVisits;
}

bool EventCursor::Impl::offer_indexed(MDB_txn* txn, std::string_view key) {
  std::string_view value;
  if (key.size() != EventId::kKeySize || !lmdb::get(txn, reader_.dbs().events, key, value)) {
    position_ = Key(key);
    const std::string what = key.size() == EventId::kKeySize ? "event " + EventId::from_key(key).to_string()
                                                             : "a key of " + std::to_string(key.size()) + " bytes";
    pending_ = std::make_exception_ptr(
        Error(ErrorCode::corruption, "index entry names " + what + ", which is not stored (run `lighthouse repair`)"));
    return false;
  }
  return offer(key, value);
}

void EventCursor::Impl::fill_range(MDB_txn* txn) {
  lmdb::Cursor cursor(txn, reader_.dbs().events);
  MDB_val k, v;
  bool ok;
  if (forward()) {
    std::optional<Key> from = position_ ? key_after(*position_) : std::optional<Key>(q_.lo);
    if (!from) return finish();
    k = lmdb::val(*from);
    ok = cursor.seek(k, v, MDB_SET_RANGE);
  } else {
    std::optional<Key> to = position_ ? position_ : q_.hi;  // exclusive
    if (to) {
      k = lmdb::val(*to);
      ok = cursor.seek(k, v, MDB_SET_RANGE) ? cursor.seek(k, v, MDB_PREV)
                                            : cursor.seek(k, v, MDB_LAST);
    } else {
      ok = cursor.seek(k, v, MDB_LAST);
    }
  }
  for (; ok; ok = cursor.seek(k, v, forward() ? MDB_NEXT : MDB_PREV)) {
    std::string_view key = lmdb::view(k);
    if (!q_.in_range(key)) return finish();
    if (!offer(key, lmdb::view(v))) return;
  }
  finish();
}

void EventCursor::Impl::fill_aggregate(MDB_txn* txn) {
  lmdb::Cursor cursor(txn, reader_.dbs().by_aggregate);
  const std::string& aggregate = *q_.query.aggregate;
  MDB_val k = lmdb::val(aggregate), v;
  if (!cursor.seek(k, v, MDB_SET)) return finish();
  if (!next_version_) next_version_ = start_version(cursor);
  if (!*next_version_) return finish();
  std::string target = schema::aggregate_entry_bound(*next_version_);
  MDB_val tk = lmdb::val(aggregate), tv = lmdb::val(target);
  bool ok = cursor.seek(tk, tv, MDB_GET_BOTH_RANGE);
  if (!forward()) {
    // The greatest version <= next_version_.
    if (!ok) {
      ok = cursor.seek(tk, tv, MDB_LAST_DUP);
    } else if (schema::decode_aggregate_entry(lmdb::view(tv), aggregate).version > *next_version_) {
      ok = cursor.seek(tk, tv, MDB_PREV_DUP);
    }
  }
  for (; ok; ok = cursor.seek(tk, tv, forward() ? MDB_NEXT_DUP : MDB_PREV_DUP)) {
    const auto [version, key] = schema::decode_aggregate_entry(lmdb::view(tv), aggregate);
    if (forward() ? (q_.max_version != 0 && version > q_.max_version) || (q_.hi && key >= *q_.hi)
                  : version < q_.min_version || key < q_.lo) {
      return finish();
    }
    next_version_ = forward() ? version + 1 : version - 1;
    if (!forward() && version == 0) return finish();
    bool in_range = q_.in_range(key);
    if (in_range && !offer_indexed(txn, key)) return;
    if (!in_range && ++visits_ >= kChunkVisits) return;
    if (!forward() && version == q_.min_version) return finish();
  }
  finish();
}

std::uint64_t EventCursor::Impl::start_version(lmdb::Cursor& cursor) {
  const std::string& aggregate = *q_.query.aggregate;
  MDB_val k = lmdb::val(aggregate), v;
  cursor.seek(k, v, MDB_FIRST_DUP);
  const std::uint64_t first = schema::decode_aggregate_entry(lmdb::view(v), aggregate).version;
  cursor.seek(k, v, MDB_LAST_DUP);
  const std::uint64_t last = schema::decode_aggregate_entry(lmdb::view(v), aggregate).version;
  auto key_at = [&](std::uint64_t version) {
    std::string target = schema::aggregate_entry_bound(version);
    MDB_val tk = lmdb::val(aggregate), tv = lmdb::val(target);
    cursor.seek(tk, tv, MDB_GET_BOTH_RANGE);
    return Key(schema::decode_aggregate_entry(lmdb::view(tv), aggregate).key);
  };
  if (forward()) {
    std::uint64_t lo = std::max(first, q_.min_version);
    std::uint64_t hi = q_.max_version != 0 ? std::min(last, q_.max_version) : last;
    if (lo > hi) return 0;
    // The first version in [lo, hi] whose key >= q_.lo.
    if (key_at(hi) < q_.lo) return 0;
    while (lo < hi) {
      std::uint64_t mid = lo + (hi - lo) / 2;
      if (key_at(mid) >= q_.lo) hi = mid; else lo = mid + 1;
    }
    return lo;
  }
  std::uint64_t lo = std::max(first, q_.min_version);
  std::uint64_t hi = q_.max_version != 0 ? std::min(last, q_.max_version) : last;
  if (lo > hi) return 0;
  if (!q_.hi) return hi;
  // The last version in [lo, hi] whose key < q_.hi.
  if (key_at(lo) >= *q_.hi) return 0;
  while (lo < hi) {
    std::uint64_t mid = hi - (hi - lo) / 2;
    if (key_at(mid) < *q_.hi) lo = mid; else hi = mid - 1;
  }
  return lo;
}

void EventCursor::Impl::fill_types(MDB_txn* txn) {
  struct Head {
    std::unique_ptr<lmdb::Cursor> cursor;
    MDB_val k, v;
    bool ok = false;
  };
  std::vector<Head> heads(q_.types.size());
  for (std::size_t i = 0; i < q_.types.size(); ++i) {
    Head& h = heads[i];
    h.cursor = std::make_unique<lmdb::Cursor>(txn, reader_.dbs().by_type);
    std::optional<Key> target;
    if (forward()) {
      target = position_ ? key_after(*position_) : std::optional<Key>(q_.lo);
      if (!target) continue;
    } else {
      target = position_ ? position_ : q_.hi;
    }
    h.k = lmdb::val(q_.types[i]);
    if (!h.cursor->seek(h.k, h.v, MDB_SET)) continue;
    if (forward()) {
      h.v = lmdb::val(*target);
      h.ok = h.cursor->seek(h.k, h.v, MDB_GET_BOTH_RANGE);
    } else if (target) {
      h.v = lmdb::val(*target);
      h.ok = h.cursor->seek(h.k, h.v, MDB_GET_BOTH_RANGE)
                 ? h.cursor->seek(h.k, h.v, MDB_PREV_DUP)
                 : h.cursor->seek(h.k, h.v, MDB_LAST_DUP);
    } else {
      h.ok = h.cursor->seek(h.k, h.v, MDB_LAST_DUP);
    }
  }
  for (;;) {
    Head* best = nullptr;
    for (auto& h : heads) {
      if (!h.ok) continue;
      if (best == nullptr || (forward() ? lmdb::view(h.v) < lmdb::view(best->v)
                                        : lmdb::view(h.v) > lmdb::view(best->v))) {
        best = &h;
      }
    }
    if (best == nullptr) return finish();
    // The index entry stays valid in the read transaction: no copy.
    std::string_view key = lmdb::view(best->v);
    if (!q_.in_range(key)) return finish();  // every other head is further out
    if (!offer_indexed(txn, key)) return;
    best->ok = best->cursor->seek(best->k, best->v, forward() ? MDB_NEXT_DUP : MDB_PREV_DUP);
  }
}

EventCursor::EventCursor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventCursor::~EventCursor() = default;
EventCursor::EventCursor(EventCursor&&) noexcept = default;
EventCursor& EventCursor::operator=(EventCursor&&) noexcept = default;
std::optional<RecordedEvent> EventCursor::next() {
  if (!impl_) throw Error(ErrorCode::closed, "this EventCursor was moved from: it has no query");
  return impl_->next();
}
const RecordedEvent* EventCursor::advance() {
  if (!impl_) throw Error(ErrorCode::closed, "this EventCursor was moved from: it has no query");
  return impl_->advance();
}
bool EventCursor::next(RecordedEvent& event) {
  if (!impl_) throw Error(ErrorCode::closed, "this EventCursor was moved from: it has no query");
  return impl_->next(event);
}
const QueryPlan& EventCursor::plan() const noexcept {
  static const QueryPlan kNone;
  return impl_ ? impl_->plan() : kNone;
}
const std::optional<Truncation>& EventCursor::truncation() const noexcept {
  static const std::optional<Truncation> kNone;
  return impl_ ? impl_->truncation() : kNone;
}

}  // namespace lighthouse
