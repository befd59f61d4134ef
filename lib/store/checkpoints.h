// Checkpoints — the stored positions of named consumers (`meta`
// "consumer/NAME"): written by the committer as exclusive tasks, read by
// anyone. A named, auto-checkpointing subscription stores its position
// through here at most every 100 ms and when it ends.
#pragma once

#include <optional>
#include <string>

#include "lighthouse/event_id.h"
#include "lighthouse/store.h"
#include "store/subscriber.h"
#include "store/write_path.h"

namespace lighthouse {

class Checkpoints {
 public:
  Checkpoints(WritePath& writer, const Databases& dbs) : writer_(writer), dbs_(dbs) {}

  // Stores `position` as `consumer`'s checkpoint (an exclusive task).
  // `caller_given`: the position comes from the host (set_checkpoint) and
  // must not be past the last event appended — its consumer would skip what
  // is appended up to it (Error(invalid_argument)).
  void write(const std::string& consumer, const EventId& position, bool caller_given);

  // Stores a named, auto-checkpointing subscription's position when it moved
  // since its last checkpoint; returns whether it wrote.
  bool store_auto(Subscription::State& state);

 private:
  WritePath& writer_;
  const Databases& dbs_;
};

}  // namespace lighthouse
