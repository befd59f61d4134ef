#include "append_command.h"

#include <algorithm>
#include <string>
#include <vector>

#include "json_event.h"
#include "line_reader.h"

namespace lighthouse::tool {
namespace {

constexpr std::size_t kGroupLines = 1000;
constexpr std::size_t kGroupBytes = std::size_t{8} << 20;
// Far above what a valid line needs (an event is at most 1 MiB of content;
// JSON escapes and base64 inflate it a few times), so it bounds memory only.
constexpr std::size_t kMaxLineBytes = std::size_t{64} << 20;

[[noreturn]] void fail_at_line(std::size_t line, const Error& error) {
  throw Error(error.code(), "line " + std::to_string(line) + ": " + error.what());
}

// Lines parsed but not yet committed, each a batch of one event.
class Group {
 public:
  bool empty() const noexcept { return batches_.empty(); }
  std::size_t size() const noexcept { return batches_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }

  void add(Batch batch, std::size_t line) {
    bytes_ += batch.events.front().content_size();
    batches_.push_back(std::move(batch));
    lines_.push_back(line);
  }

  // Commits every line in one transaction, then acknowledges each event.
  void commit(Store& store, std::ostream& out) {
    if (batches_.empty()) return;
    std::vector<AppendResult> results;
    try {
      results = store.append_batches(std::move(batches_));
    } catch (const Error& error) {
      // append_batches names the failing batch, except when there is only one.
      if (error.index() && *error.index() < lines_.size()) {
        fail_at_line(lines_[*error.index()], error);
      }
      if (lines_.size() == 1) fail_at_line(lines_.front(), error);
      throw Error(error.code(), "lines " + std::to_string(lines_.front()) + " to " +
                                    std::to_string(lines_.back()) + ": " + error.what());
    }
    std::string acknowledgements;
    for (const AppendResult& result : results) {
      for (const AppendedEvent& event : result.events) {
        acknowledgements += appended_event_json(event, result.replayed);
        acknowledgements += '\n';
      }
    }
    out << acknowledgements << std::flush;
    if (!out) throw Error(ErrorCode::io_error, "cannot write to standard output");
    batches_.clear();
    lines_.clear();
    bytes_ = 0;
  }

 private:
  std::vector<Batch> batches_;
  std::vector<std::size_t> lines_;
  std::size_t bytes_ = 0;
};

// The limits of one append_batches call, checked as lines arrive so that an
// oversized --batch is refused at the line that breaks it.
void check_atomic_totals(const Group& group, const Limits& limits, std::size_t line) {
  if (group.size() > limits.max_batch_events) {
    fail_at_line(line,
                 Error(ErrorCode::limit_exceeded,
                       "--batch of more than " + std::to_string(limits.max_batch_events) +
                           " events: the limit is " + std::to_string(limits.max_batch_events)));
  }
  if (group.bytes() > limits.max_batch_bytes) {
    fail_at_line(line,
                 Error(ErrorCode::limit_exceeded, "--batch of " + std::to_string(group.bytes()) +
                                                      " content bytes so far: the limit is " +
                                                      std::to_string(limits.max_batch_bytes)));
  }
}

}  // namespace

void run_append(Store& store, int input_fd, std::ostream& out, bool atomic, Priority priority) {
  const Limits& limits = store.options().limits;
  const std::size_t group_lines = std::min(kGroupLines, limits.max_batch_events);
  const std::size_t group_bytes = std::min(kGroupBytes, limits.max_batch_bytes);
  LineReader reader(input_fd, kMaxLineBytes);
  Group group;
  for (;;) {
    std::optional<std::string_view> line;
    try {
      line = reader.next();
    } catch (const Error& error) {
      fail_at_line(reader.line_number() + 1, error);
    }
    if (line) {
      if (is_blank(*line)) continue;
      const std::size_t number = reader.line_number();
      Batch batch;
      try {
        batch = parse_event_line(*line);
        batch.priority = priority;
      } catch (const Error& error) {
        fail_at_line(number, error);
      }
      if (atomic) {
        group.add(std::move(batch), number);
        check_atomic_totals(group, limits, number);
        continue;
      }
      // Keep a group within its byte budget unless one event alone exceeds it.
      if (!group.empty() && group.bytes() + batch.events.front().content_size() > group_bytes) {
        group.commit(store, out);
      }
      group.add(std::move(batch), number);
      if (group.size() >= group_lines || group.bytes() >= group_bytes) group.commit(store, out);
      continue;
    }
    if (reader.done()) break;
    // Acknowledge what we have before waiting for a slow producer.
    if (!atomic && !group.empty() && !reader.ready()) group.commit(store, out);
    reader.fill();
  }
  group.commit(store, out);
}

}  // namespace lighthouse::tool
