#include "store/checkpoints.h"

#include "store/read_path.h"

namespace lighthouse {

void Checkpoints::write(const std::string& consumer, const EventId& position, bool caller_given) {
  writer_.run_exclusive(ExclusiveTask::checkpoint, [&] {
    writer_.write_exclusive([&](MDB_txn* txn) {
      if (caller_given) {
        // The last event appended: the last key, or with none stored (all
        // truncated) the meta counter, compared by sequence.
        bool past;
        if (const auto last = ReadPath::last_event_id(txn, dbs_)) {
          past = *last < position;  // IDs order as their keys do
        } else {
          past = position.sequence > schema::read_u64(txn, dbs_, schema::meta::kLastSequence, 0);
        }
        if (past) {
          throw Error(ErrorCode::invalid_argument,
                      "checkpoint " + position.to_string() + " of consumer '" + consumer +
                          "' is after the last event appended: the consumer would skip what is appended up to it");
        }
      }
      const auto key = position.to_key();
      lmdb::put(txn, dbs_.meta, schema::consumer_key(consumer), schema::key_view(key));
    });
  });
}

bool Checkpoints::store_auto(Subscription::State& state) {
  if (state.options.consumer.empty() || !state.options.auto_checkpoint) return false;
  std::optional<EventId> at;
  {
    std::lock_guard lock(state.mutex);
    if (state.position == state.checkpointed) return false;
    at = state.position;
  }
  write(state.options.consumer, *at, false);
  std::lock_guard lock(state.mutex);
  state.checkpointed = at;
  return true;
}

}  // namespace lighthouse
