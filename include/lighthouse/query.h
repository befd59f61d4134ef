// Queries by secondary index, streaming cursors and query plans.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lighthouse/event.h"
#include "lighthouse/event_id.h"
#include "lighthouse/export.h"

namespace lighthouse {

enum class Direction : std::uint8_t { forward, reverse };

// What a query selects. Every filter that is set must hold (they combine with
// AND); an empty Query selects every event. Ranges:
//   after_id        exclusive lower bound (an ID need not be stored to be a bound)
//   before_id       exclusive upper bound
//   from_sequence   inclusive lower bound
//   to_sequence     inclusive upper bound
//   since_ns        inclusive lower bound on timestamp_ns
//   until_ns        exclusive upper bound on timestamp_ns
// With Direction::reverse the same events come newest first, and `limit`
// keeps the newest `limit` of them.
struct Query {
  std::vector<std::string> types;  // any of these types
  std::string type_prefix;         // types starting with this
  std::optional<std::string> aggregate;
  std::optional<EventId> after_id;
  std::optional<EventId> before_id;
  std::optional<std::uint64_t> from_sequence;
  std::optional<std::uint64_t> to_sequence;
  std::optional<std::uint64_t> since_ns;
  std::optional<std::uint64_t> until_ns;
  std::size_t limit = 0;  // 0: no limit
  Direction direction = Direction::forward;
  // Overrides Options::verify_on_read for this query.
  std::optional<ReadCheck> verify_on_read;
};

// The plan the query planner chose: which index it walks and how many
// entries it expects to visit there.
struct QueryPlan {
  enum class Source : std::uint8_t { events_range, by_type, by_aggregate };
  Source source = Source::events_range;
  std::uint64_t estimate = 0;  // index entries the plan expects to visit
  std::string description;     // one line, for people ("by_aggregate 'order-7': 12 entries")
};

LIGHTHOUSE_API std::string_view to_string(QueryPlan::Source source) noexcept;

// Set on a cursor whose range reaches below the store's base: events that
// truncate_before() dropped would have been part of the result. They are in
// `archive`; the cursor returns only what the store still holds.
struct Truncation {
  std::uint64_t base_sequence = 0;  // the first sequence the store still holds
  std::string archive;              // the archive that holds the events before it
};

// A streaming cursor over the events a query selects.
//
// Memory stays bounded whatever the result size: the cursor fetches events in
// chunks, and holds an LMDB read transaction only while it fetches one, so an
// idle cursor pins no pages and blocks neither writers nor map growth. Each
// chunk reads one consistent snapshot. While writers run, a cursor returns no
// event twice and never goes back in ID order (IDs only grow, so nothing can
// appear behind it); events appended after the query began may or may not
// appear (a reverse cursor starts from the newest event when it is created; a
// forward cursor sees them if they are committed before it reaches the end).
//
// Not safe for concurrent use: one thread at a time. The cursor keeps the
// store open; after Store::close() next() raises Error(closed).
class LIGHTHOUSE_API EventCursor {
 public:
  // Returns the next event, or nothing when the query is exhausted.
  // Errors: corruption (a stored event fails its checksum or does not
  // decode; the cursor stays positioned after it, so next() goes on),
  // closed, io_error.
  std::optional<RecordedEvent> next();
  // The same into `event`, every field of it replaced; false (and `event`
  // unchanged) when the query is exhausted. Reusing one event through a
  // loop reuses its storage: the cursor decodes the next events into the
  // strings given back, so a long read allocates nothing per event (the
  // range-for below does better still: it reads the cursor's events in
  // place). Errors: as next().
  bool next(RecordedEvent& event);

  // The plan this cursor follows.
  const QueryPlan& plan() const noexcept;

  // Set iff the query reaches below the store's base (see Truncation): the
  // result is then not the whole history, and this says where the rest is.
  const std::optional<Truncation>& truncation() const noexcept;

  // Input iteration: for (const RecordedEvent& e : cursor) ...
  class iterator {
   public:
    using value_type = RecordedEvent;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(EventCursor* cursor) : cursor_(cursor) { ++*this; }
    // The event stays valid until the iterator is advanced (it is the
    // cursor's own, decoded in place: nothing is copied or moved).
    const RecordedEvent& operator*() const { return *current_; }
    const RecordedEvent* operator->() const { return current_; }
    iterator& operator++() {
      current_ = cursor_->advance();
      if (current_ == nullptr) cursor_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, const iterator& b) { return a.cursor_ == b.cursor_; }

   private:
    EventCursor* cursor_ = nullptr;
    const RecordedEvent* current_ = nullptr;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

  class Impl;
  explicit EventCursor(std::unique_ptr<Impl> impl);
  ~EventCursor();
  EventCursor(EventCursor&&) noexcept;
  EventCursor& operator=(EventCursor&&) noexcept;

 private:
  // The next event, the cursor's own until the next call; nullptr at the end.
  const RecordedEvent* advance();
  std::unique_ptr<Impl> impl_;
};

}  // namespace lighthouse
