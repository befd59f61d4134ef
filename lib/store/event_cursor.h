// EventCursor::Impl — walks the source the planner chose (the events range,
// by_type merged over several types, or by_aggregate by version), one chunk
// per read transaction, resuming after the last key it visited.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lighthouse/query.h"
#include "lighthouse/store.h"
#include "lighthouse/tracing.h"
#include "lmdb/lmdb.h"
#include "store/query_planner.h"

namespace lighthouse {

class ReadPath;

class EventCursor::Impl {
 public:
  // `owner` keeps the store (and so `reader`) alive while the cursor lives.
  Impl(std::shared_ptr<Store::Impl> owner, const ReadPath& reader, ResolvedQuery query);
  ~Impl();  // records the query's time
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  std::optional<RecordedEvent> next();
  // The next event swapped into `event` (its storage goes back to the
  // chunk, to be decoded into); false when the query is exhausted.
  bool next(RecordedEvent& event);
  // The next event of the chunk, fetching the next chunk when it is over;
  // nullptr when the query is exhausted.
  RecordedEvent* advance();
  const QueryPlan& plan() const noexcept { return q_.plan; }
  const std::optional<Truncation>& truncation() const noexcept { return q_.truncation; }
  // Counts the time since `start` as the query's.
  void add_time(std::chrono::steady_clock::time_point start);
  // The query's span, ended when the cursor is exhausted, fails or goes.
  void trace(tracing::Span span) { span_ = std::move(span); }

 private:
  bool forward() const { return q_.query.direction == Direction::forward; }
  void fill();
  // Takes one candidate in walk order. Returns false when the chunk is over.
  bool offer(std::string_view key, std::string_view value);
  // Looks the candidate up in `events` (index sources).
  bool offer_indexed(MDB_txn* txn, std::string_view key);
  void fill_range(MDB_txn* txn);
  void fill_aggregate(MDB_txn* txn);
  std::uint64_t start_version(lmdb::Cursor& cursor);
  void fill_types(MDB_txn* txn);
  void finish() { exhausted_ = true; }

  std::shared_ptr<Store::Impl> owner_;
  const ReadPath& reader_;
  ResolvedQuery q_;
  std::optional<Key> position_;                // the last key visited
  std::optional<std::uint64_t> next_version_;  // by_aggregate: the next version to visit
  // The chunk: events [taken_, filled_) are still to return. The events
  // past filled_ are kept for their storage, decoded into by the next one.
  std::vector<RecordedEvent> buffer_;
  std::size_t taken_ = 0;
  std::size_t filled_ = 0;
  std::size_t emitted_ = 0;
  std::size_t visits_ = 0;
  bool exhausted_ = false;
  std::exception_ptr pending_;
  std::uint64_t spent_ns_ = 0;
  std::uint64_t returned_ = 0;
  tracing::Span span_;
  void end_span();
};

}  // namespace lighthouse
