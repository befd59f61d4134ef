// EventCursor: walks the source the planner chose, one chunk per read
// transaction, resuming after the last key it visited.
#include <chrono>
#include <utility>
#include <vector>

#include "codec/record.h"
#include "lighthouse/query.h"
#include "store/query_planner.h"
#include "store/schema.h"

namespace lighthouse {
namespace {

// A chunk ends after this many events, or after visiting this many index
// entries (so a selective filter does not hold a read transaction long).
constexpr std::size_t kChunkEvents = 256;
constexpr std::size_t kChunkVisits = 4096;

std::string version_entry(std::uint64_t version) {
  return schema::be64(version) + std::string(EventId::kKeySize, '\0');
}

}  // namespace

class EventCursor::Impl {
 public:
  Impl(std::shared_ptr<Store::Impl> store, ResolvedQuery query)
      : store_(std::move(store)), q_(std::move(query)) {
    exhausted_ = q_.empty;
  }
  ~Impl() {
    // A query's time: planning and every chunk it read.
    if (store_->monitor_) store_->monitor_->record_query(spent_ns_, returned_);
  }
  void add_time(std::chrono::steady_clock::time_point start) {
    spent_ns_ += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
  }

  std::optional<RecordedEvent> next() {
    for (;;) {
      if (store_->closed_.load(std::memory_order_acquire)) {
        throw Error(ErrorCode::closed, "store '" + store_->path().string() + "' is closed");
      }
      if (taken_ < buffer_.size()) {
        ++returned_;
        return std::move(buffer_[taken_++]);
      }
      buffer_.clear();  // keeps its capacity: no allocation per chunk
      taken_ = 0;
      if (pending_) {
        try {
          std::rethrow_exception(std::exchange(pending_, nullptr));
        } catch (const Error& error) {
          // Corruption met is a health trigger of a writing process.
          if (error.code() == ErrorCode::corruption) store_->note_corruption(error.what());
          throw;
        }
      }
      if (exhausted_) return std::nullopt;
      fill();
    }
  }

  const QueryPlan& plan() const noexcept { return q_.plan; }
  const std::optional<Truncation>& truncation() const noexcept { return q_.truncation; }

 private:
  bool forward() const { return q_.query.direction == Direction::forward; }

  void fill() {
    const auto start = std::chrono::steady_clock::now();
    struct Timer {
      Impl* self;
      std::chrono::steady_clock::time_point start;
      ~Timer() { self->add_time(start); }
    } timer{this, start};
    auto lock = store_->use();
    auto read = store_->begin_read();
    visits_ = 0;
    switch (q_.plan.source) {
      case QueryPlan::Source::events_range: fill_range(read->txn.get()); break;
      case QueryPlan::Source::by_aggregate: fill_aggregate(read->txn.get()); break;
      case QueryPlan::Source::by_type: fill_types(read->txn.get()); break;
    }
  }

  // Takes one candidate in walk order. Returns false when the chunk is over.
  bool offer(std::string_view key, std::string_view value) {
    position_ = Key(key);
    ++visits_;
    try {
      std::string_view stored_tail;
      RecordedEvent e = codec::decode_record(EventId::from_key(key), value, &stored_tail);
      if (q_.matches(e)) {
        if (q_.verify_checksums) codec::verify_checksum(e, stored_tail);
        buffer_.push_back(std::move(e));
        if (q_.query.limit != 0 && ++emitted_ >= q_.query.limit) {
          exhausted_ = true;
          return false;
        }
      }
    } catch (const Error&) {
      pending_ = std::current_exception();  // delivered after the events before it
      return false;
    }
    return buffer_.size() < kChunkEvents && visits_ < kChunkVisits;
  }

  // Looks the candidate up in `events` (index sources).
  bool offer_indexed(MDB_txn* txn, std::string_view key) {
    std::string_view value;
    if (!lmdb::get(txn, store_->dbs_.events, key, value)) {
      position_ = Key(key);
      pending_ = std::make_exception_ptr(
          Error(ErrorCode::corruption, "index entry names event " +
                                           EventId::from_key(key).to_string() +
                                           ", which is not stored (run `lighthouse repair`)"));
      return false;
    }
    return offer(key, value);
  }

  void fill_range(MDB_txn* txn) {
    lmdb::Cursor cursor(txn, store_->dbs_.events);
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

  void fill_aggregate(MDB_txn* txn) {
    lmdb::Cursor cursor(txn, store_->dbs_.by_aggregate);
    const std::string& aggregate = *q_.query.aggregate;
    MDB_val k = lmdb::val(aggregate), v;
    if (!cursor.seek(k, v, MDB_SET)) return finish();
    if (!next_version_) next_version_ = start_version(cursor);
    if (!*next_version_) return finish();
    std::string target = version_entry(*next_version_);
    MDB_val tk = lmdb::val(aggregate), tv = lmdb::val(target);
    bool ok = cursor.seek(tk, tv, MDB_GET_BOTH_RANGE);
    if (!forward()) {
      // The greatest version <= next_version_.
      if (!ok) {
        ok = cursor.seek(tk, tv, MDB_LAST_DUP);
      } else if (schema::read_be(lmdb::view(tv), 8) > *next_version_) {
        ok = cursor.seek(tk, tv, MDB_PREV_DUP);
      }
    }
    for (; ok; ok = cursor.seek(tk, tv, forward() ? MDB_NEXT_DUP : MDB_PREV_DUP)) {
      std::string_view entry = lmdb::view(tv);
      std::uint64_t version = schema::read_be(entry, 8);
      std::string_view key = entry.substr(8);
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

  // The first version to visit: bisects the aggregate's versions for the ID
  // range bound, so a time or sequence filter does not walk a long stream.
  std::uint64_t start_version(lmdb::Cursor& cursor) {
    const std::string& aggregate = *q_.query.aggregate;
    MDB_val k = lmdb::val(aggregate), v;
    cursor.seek(k, v, MDB_FIRST_DUP);
    std::uint64_t first = schema::read_be(lmdb::view(v), 8);
    cursor.seek(k, v, MDB_LAST_DUP);
    std::uint64_t last = schema::read_be(lmdb::view(v), 8);
    auto key_at = [&](std::uint64_t version) {
      std::string target = version_entry(version);
      MDB_val tk = lmdb::val(aggregate), tv = lmdb::val(target);
      cursor.seek(tk, tv, MDB_GET_BOTH_RANGE);
      return Key(lmdb::view(tv).substr(8));
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

  void fill_types(MDB_txn* txn) {
    struct Head {
      std::unique_ptr<lmdb::Cursor> cursor;
      MDB_val k, v;
      bool ok = false;
    };
    std::vector<Head> heads(q_.types.size());
    for (std::size_t i = 0; i < q_.types.size(); ++i) {
      Head& h = heads[i];
      h.cursor = std::make_unique<lmdb::Cursor>(txn, store_->dbs_.by_type);
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

  void finish() { exhausted_ = true; }

  std::shared_ptr<Store::Impl> store_;
  ResolvedQuery q_;
  std::optional<Key> position_;                // the last key visited
  std::optional<std::uint64_t> next_version_;  // by_aggregate: the next version to visit
  std::vector<RecordedEvent> buffer_;  // the chunk; events before taken_ were returned
  std::size_t taken_ = 0;
  std::size_t emitted_ = 0;
  std::size_t visits_ = 0;
  bool exhausted_ = false;
  std::exception_ptr pending_;
  std::uint64_t spent_ns_ = 0;
  std::uint64_t returned_ = 0;
};

EventCursor::EventCursor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventCursor::~EventCursor() = default;
EventCursor::EventCursor(EventCursor&&) noexcept = default;
EventCursor& EventCursor::operator=(EventCursor&&) noexcept = default;
std::optional<RecordedEvent> EventCursor::next() {
  if (!impl_) throw Error(ErrorCode::closed, "this EventCursor was moved from: it has no query");
  return impl_->next();
}
const QueryPlan& EventCursor::plan() const noexcept {
  static const QueryPlan kNone;
  return impl_ ? impl_->plan() : kNone;
}
const std::optional<Truncation>& EventCursor::truncation() const noexcept {
  static const std::optional<Truncation> kNone;
  return impl_ ? impl_->truncation() : kNone;
}

EventCursor Store::query(const Query& query) const {
  const auto start = std::chrono::steady_clock::now();
  auto lock = impl().use();
  auto read = impl().begin_read();
  auto cursor = std::make_unique<EventCursor::Impl>(
      impl_, plan_query(read->txn.get(), impl().dbs_, query, impl().options().verify_checksums));
  cursor->add_time(start);
  return EventCursor(std::move(cursor));
}

QueryPlan Store::explain(const Query& query) const {
  auto lock = impl().use();
  auto read = impl().begin_read();
  return plan_query(read->txn.get(), impl().dbs_, query, impl().options().verify_checksums).plan;
}

EventCursor Store::read_aggregate(const std::string& aggregate, std::uint64_t from_version,
                                  std::uint64_t to_version) const {
  const auto start = std::chrono::steady_clock::now();
  auto lock = impl().use();
  auto read = impl().begin_read();
  auto cursor = std::make_unique<EventCursor::Impl>(
      impl_, plan_aggregate(read->txn.get(), impl().dbs_, aggregate, from_version, to_version,
                            impl().options().verify_checksums));
  cursor->add_time(start);
  return EventCursor(std::move(cursor));
}

}  // namespace lighthouse
