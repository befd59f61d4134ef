// crash_workload MODE PHASE DIR [--no-meta-sync]: the programs whose file
// operations the power-loss tests record (tests/crash/recorder.c). PHASE
// `setup` prepares DIR (not recorded: it is the durable starting state);
// PHASE `run` does the work, writing a mark after each operation returns
// to descriptor 987 (the recorder logs it; nothing is written there — the
// program holds /dev/null there so that no file of its own gets that number):
//   ack ID BATCH SIZE        an appended event, after its append returned
//   done WHAT [ARGS]         an operation that returned
// Every event carries metadata batch=BATCH and size=SIZE, so a check can tell
// whether a batch is whole. Appends come from two threads (single, batched)
// or three (async) at once.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "lighthouse/lighthouse.h"

using namespace lighthouse;
namespace fs = std::filesystem;

namespace {

constexpr int kMarkFd = 987;
bool no_meta_sync = false;

void mark(const std::string& text) {
  const std::string line = text + "\n";
  [[maybe_unused]] ssize_t ignored = ::write(kMarkFd, line.data(), line.size());
}

Options options() {
  Options o;
  if (no_meta_sync) o.durability = Durability::no_meta_sync;
  o.map_size = std::size_t{1} << 26;  // grows when needed; small files
  o.health.window_seconds = 0;        // no transitions but the workload's
  return o;
}

EventData event(int i, const std::string& batch, std::size_t size) {
  EventData e;
  e.type = i % 3 == 0 ? "Placed" : "Paid";
  e.aggregate = "order-" + std::to_string(i % 7);
  e.data = std::string(40 + (i * 37) % 300, static_cast<char>('a' + i % 26));
  e.metadata["batch"] = batch;
  e.metadata["size"] = std::to_string(size);
  return e;
}

void ack(const AppendResult& r, const std::string& batch) {
  for (const auto& e : r.events) mark("ack " + e.id.to_string() + " " + batch + " " + std::to_string(r.events.size()));
}

// `batches` appends of `size(i)` events from one thread.
template <typename Size>
void append_batches(Store& store, const std::string& tag, int batches, Size size) {
  int n = 0;
  for (int b = 0; b < batches; ++b) {
    const std::string batch = tag + "-" + std::to_string(b);
    const std::size_t k = size(b);
    std::vector<EventData> events;
    for (std::size_t i = 0; i < k; ++i) events.push_back(event(n++, batch, k));
    ack(store.append_batch(std::move(events)), batch);
  }
}

// `f(t)` on each of `n` threads at once.
template <typename F>
void in_threads(int n, F f) {
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back([&f, t] { f(t); });
  for (auto& t : threads) t.join();
}

void fill(const fs::path& store_dir, int n) {
  Store store = Store::open(store_dir, options());
  std::vector<EventData> batch;
  for (int i = 0; i < n; ++i) batch.push_back(event(i, "setup", 1));
  if (!batch.empty()) store.append_batch(std::move(batch));
}

void export_to(const fs::path& store_dir, const fs::path& archive) {
  Store store = Store::open(store_dir, options());
  ExportOptions o;
  o.segment_bytes = 8192;
  export_archive(store, archive, o);
}

int setup(const std::string& mode, const fs::path& dir) {
  const fs::path store = dir / "store";
  if (mode == "truncate" || mode == "export" || mode == "import") {
    fill(store, 300);
    export_to(store, dir / "archive");
  } else if (mode == "compact" || mode == "backup") {
    fill(store, 200);
  } else if (mode == "upgrade") {
    // The format-1 fixture, as the code of that format wrote it.
    fs::create_directories(store);
    fs::copy_file(fs::path(LIGHTHOUSE_FIXTURES) / "format1" / "store" / "data.mdb", store / "data.mdb");
  } else {
    fill(store, 5);
  }
  return 0;
}

int run(const std::string& mode, const fs::path& dir) {
  const fs::path store_dir = dir / "store";
  if (mode == "compact") {
    Store::compact(store_dir);
    mark("done compacted");
    return 0;
  }
  if (mode == "upgrade") {
    Store::upgrade(store_dir);
    mark("done upgraded");
    return 0;
  }
  if (mode == "import") {
    Store copy = Store::open(dir / "copy", options());
    import_archive(dir / "archive", copy);
    mark("done imported");
    return 0;
  }
  Store store = Store::open(store_dir, options());
  if (mode == "single") {
    in_threads(2, [&](int t) { append_batches(store, "s" + std::to_string(t), 15, [](int) { return 1; }); });
  } else if (mode == "batched") {
    in_threads(2, [&](int t) {
      append_batches(store, "b" + std::to_string(t), 8, [](int b) { return std::size_t(2 + b % 5); });
    });
  } else if (mode == "async") {
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&, t] {
        std::vector<std::pair<std::future<AppendResult>, std::string>> pending;
        for (int i = 0; i < 10; ++i) {
          const std::string batch = "a" + std::to_string(t) + "-" + std::to_string(i);
          Batch b;
          b.events = {event(i, batch, 1 + i % 2)};
          if (i % 2 == 1) b.events.push_back(event(i + 1, batch, 2));
          pending.emplace_back(store.append_batch_async(std::move(b)), batch);
        }
        for (auto& [f, batch] : pending) ack(f.get(), batch);
      });
    }
    for (auto& t : threads) t.join();
  } else if (mode == "truncate") {
    Query q;
    q.from_sequence = 251;
    q.limit = 1;
    const EventId cut = store.query(q).next()->id;
    append_batches(store, "before", 3, [](int) { return 1; });
    const TruncateReport r = store.truncate_before(cut, dir / "archive");
    mark("done truncated " + std::to_string(r.base_sequence));
    append_batches(store, "after", 3, [](int) { return 2; });
  } else if (mode == "export") {
    append_batches(store, "e", 8, [](int b) { return std::size_t(1 + b % 3); });
    ExportOptions o;
    o.segment_bytes = 8192;
    export_archive(store, dir / "archive", o);
    mark("done exported");
  } else if (mode == "backup") {
    store.backup(dir / "backup");
    mark("done backed-up");
  } else if (mode == "health") {
    append_batches(store, "h1", 2, [](int) { return 1; });
    store.enter_emergency("power-loss drill");
    mark("done health emergency");
    store.clear_emergency();
    mark("done health healthy");
    append_batches(store, "h2", 2, [](int) { return 1; });
  } else if (mode == "checkpoint") {
    for (int i = 0; i < 6; ++i) {
      append_batches(store, "c" + std::to_string(i), 1, [](int) { return 2; });
      const auto last = store.query([] {
                                 Query q;
                                 q.direction = Direction::reverse;
                                 q.limit = 1;
                                 return q;
                               }())
                            .next()
                            ->id;
      store.set_checkpoint("reader", last);
      mark("done checkpoint reader " + last.to_string());
    }
  } else {
    std::fprintf(stderr, "crash_workload: unknown mode %s\n", mode.c_str());
    return 2;
  }
  store.close();
  mark("done closed");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: crash_workload MODE setup|run DIR [--no-meta-sync]\n");
    return 2;
  }
  for (int i = 4; i < argc; ++i) no_meta_sync = no_meta_sync || std::strcmp(argv[i], "--no-meta-sync") == 0;
  const int null_fd = ::open("/dev/null", O_WRONLY);
  if (null_fd >= 0 && null_fd != kMarkFd) {
    ::dup2(null_fd, kMarkFd);
    ::close(null_fd);
  }
  try {
    return std::strcmp(argv[2], "setup") == 0 ? setup(argv[1], argv[3]) : run(argv[1], argv[3]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crash_workload %s: %s\n", argv[1], e.what());
    return 1;
  }
}
