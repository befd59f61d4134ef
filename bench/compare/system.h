// The systems bench/compare measures side by side, behind one interface:
// Lighthouse, raw LMDB with the same three B-trees, SQLite and RocksDB.
#pragma once

#include "lighthouse/tracing.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lighthouse/store.h"

namespace compare {

// What append_async returns: a future that completes once the event is
// durable — the system's own future type, so that no conversion is measured.
struct Ticket {
  std::future<void> plain;
  std::future<lighthouse::AppendResult> lighthouse;
  void wait() {
    if (plain.valid()) plain.get();
    else lighthouse.get();
  }
};

struct BenchEvent {
  std::string type;
  std::string aggregate;
  std::string data;
};

// What a read checks: `on` is each system's default (Lighthouse: its fast
// check; RocksDB: its block checksums, on by default; raw LMDB and SQLite
// have none); `full` is Lighthouse's SHA-256 on every read (the others as
// `on`); `off` turns off what can be turned off.
enum class Checks { on, full, off };

class System {
 public:
  virtual ~System() = default;
  virtual std::string name() const = 0;
  // Opens (creating when missing) the system's store in `dir`.
  virtual void open(const std::filesystem::path& dir) = 0;
  virtual void close() = 0;
  // Appends the events in one durable transaction.
  virtual void append_batch(const std::vector<BenchEvent>& events) = 0;
  // Appends one event durably; called from many threads at once, each
  // waiting for its own acknowledgement.
  virtual void append_one(const BenchEvent& event) = 0;
  // Appends one event and returns a future that completes once it is
  // durable. Systems without such an API use a committer thread that takes
  // everything queued into one append_batch (AsyncAdapter).
  virtual Ticket append_async(BenchEvent event) = 0;
  // Reads every event of `type` in ID order, materialising type, aggregate
  // and data; returns the count, checking what `checks` says.
  virtual std::uint64_t query_type(const std::string& type, Checks checks) = 0;
  // Reads one aggregate's events in order; returns the count.
  virtual std::uint64_t read_aggregate(const std::string& aggregate, Checks checks) = 0;
  // Reads every event in order, calling `progress` every 10,000 events.
  virtual std::uint64_t scan_all(const std::function<void()>& progress) = 0;
  // Waits until background work caused by the writes so far (RocksDB's
  // flushes and compactions) has finished, so its disk writes are counted.
  virtual void settle() {}
  // Write transactions this system's store committed since it was opened;
  // 0 where the system does not say (only Lighthouse does).
  virtual std::uint64_t commits() const { return 0; }
};

// Group commit for systems that have none: a committer thread takes all
// queued events into one append_batch call and completes their futures.
class AsyncAdapter {
 public:
  explicit AsyncAdapter(std::function<void(const std::vector<BenchEvent>&)> commit);
  ~AsyncAdapter();
  std::future<void> submit(BenchEvent event);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A peer without asynchronous appends: append_async goes through an
// AsyncAdapter (group commit as a user would write it) over append_batch.
class AdaptedSystem : public System {
 public:
  Ticket append_async(BenchEvent event) override;

 protected:
  // Stops the adapter, committing what it holds; call before closing.
  void stop_adapter();

 private:
  std::mutex adapter_mutex_;
  std::unique_ptr<AsyncAdapter> adapter_;
};

// `traced`: the system named lighthouse-traced, the same store with the
// tracing set by set_lighthouse_tracing.
std::unique_ptr<System> make_lighthouse(bool traced = false);
// The tracing of lighthouse-traced's stores (--trace-sampling, --trace-sink).
void set_lighthouse_tracing(std::shared_ptr<lighthouse::tracing::SpanSink> sink, double ratio);
std::unique_ptr<System> make_lmdb();
std::unique_ptr<System> make_sqlite();
std::unique_ptr<System> make_rocksdb();


}  // namespace compare
