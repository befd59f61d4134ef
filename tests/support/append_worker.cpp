// A child process for multi-process, crash and fault tests: appends events to
// a store and prints one line per acknowledged event,
//   ack ID AGGREGATE VERSION
// after its append returned (so the event is durable), and one line per
// failed append,
//   error CODE MESSAGE
//
// Usage: append_worker STORE EVENTS [options]   (EVENTS 0: until killed)
//   --threads N         appending threads (default 1)
//   --batch N           events per append_batch (default 1)
//   --aggregates N      aggregates per worker (default 10)
//   --prefix P          aggregate name prefix (default "agg")
//   --payload N         data bytes per event (default 64)
//   --map-size BYTES    initial map size
//   --expect            pass exact expected versions (per-thread aggregates)
//   --keep-going        continue after a failed append
//   --priority P        low, normal, high or critical
//   --mixed             batch sizes vary: mostly single events, every fourth
//                       append a batch of 2..17 events
//   --shared            aggregates are shared by every thread and process with
//                       the same prefix; with --expect a conflict is retried
//                       with the actual version the error reports
//   --no-meta-sync      open with Durability::no_meta_sync
//   --keys              idempotency keys on every event; every tenth batch is
//                       sent again and must replay with the same IDs
//                       (else a line "replay-mismatch BATCH")
// Every event carries metadata batch=PID:THREAD:N and size=EVENTS-IN-BATCH, so
// a test can tell whether a batch is whole.
// At the end it prints the store's health as it sees it:
//   health STATE REASON
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lighthouse/lighthouse.h"

namespace {

struct Config {
  std::string store;
  long events = 0;
  int threads = 1;
  int batch = 1;
  int aggregates = 10;
  std::string prefix = "agg";
  std::size_t payload = 64;
  std::size_t map_size = 0;
  bool expect = false;
  bool keep_going = false;
  bool mixed = false;
  bool shared = false;
  bool keys = false;
  bool no_meta_sync = false;
  lighthouse::Priority priority = lighthouse::Priority::normal;
};

std::mutex out_mutex;

void print_ack(const lighthouse::AppendedEvent& e, const std::string& aggregate) {
  std::lock_guard lock(out_mutex);
  std::printf("ack %s %s %llu\n", e.id.to_string().c_str(), aggregate.c_str(),
              static_cast<unsigned long long>(e.aggregate_version));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: append_worker STORE EVENTS [options]\n");
    return 2;
  }
  Config c;
  c.store = argv[1];
  c.events = std::atol(argv[2]);
  if (c.events == 0) c.events = std::numeric_limits<long>::max() / 2;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return std::string(i + 1 < argc ? argv[++i] : ""); };
    if (a == "--threads") c.threads = std::stoi(next());
    else if (a == "--batch") c.batch = std::stoi(next());
    else if (a == "--aggregates") c.aggregates = std::stoi(next());
    else if (a == "--prefix") c.prefix = next();
    else if (a == "--payload") c.payload = std::stoul(next());
    else if (a == "--map-size") c.map_size = std::stoul(next());
    else if (a == "--expect") c.expect = true;
    else if (a == "--keep-going") c.keep_going = true;
    else if (a == "--mixed") c.mixed = true;
    else if (a == "--shared") c.shared = true;
    else if (a == "--keys") c.keys = true;
    else if (a == "--no-meta-sync") c.no_meta_sync = true;
    else if (a == "--priority") c.priority = lighthouse::parse_priority(next()).value_or(c.priority);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  lighthouse::Options options;
  if (c.map_size != 0) options.map_size = c.map_size;
  if (c.no_meta_sync) options.durability = lighthouse::Durability::no_meta_sync;
  std::atomic<bool> failed{false};
  try {
    auto store = lighthouse::Store::open(c.store, options);
    std::atomic<long> next_event{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < c.threads; ++t) {
      threads.emplace_back([&, t] {
        std::map<std::string, std::uint64_t> versions;
        long n;
        long appends = 0;
        const std::string tag = std::to_string(::getpid()) + ":" + std::to_string(t) + ":";
        auto size_of = [&](long a) { return c.mixed && a % 4 == 3 ? 2 + (a * 7919) % 16 : (c.mixed ? 1 : c.batch); };
        long size;
        while ((size = size_of(appends), n = next_event.fetch_add(size)) < c.events && !(failed && !c.keep_going)) {
          lighthouse::Batch batch;
          batch.priority = c.priority;
          const long end = std::min(n + size, c.events);
          const std::string batch_id = tag + std::to_string(appends++);
          for (long k = n; k < end; ++k) {
            lighthouse::EventData e;
            e.type = "Worked" + std::to_string(k % 8);
            // With --expect and without --shared each thread owns its
            // aggregates, so it knows their versions.
            e.aggregate = c.shared ? c.prefix + "-" + std::to_string(k % c.aggregates)
                                   : c.prefix + "-" + std::to_string(t) + "-" + std::to_string(k % c.aggregates);
            if (c.keys) e.idempotency_key = batch_id + ":" + std::to_string(k - n);
            e.content_type = lighthouse::ContentType::bytes;
            e.data = std::string(c.payload, static_cast<char>('a' + k % 26));
            e.metadata["batch"] = batch_id;
            e.metadata["size"] = std::to_string(end - n);
            batch.events.push_back(std::move(e));
          }
          auto expect = [&] {
            batch.expectations.clear();
            if (!c.expect) return;
            std::map<std::string, std::uint64_t> seen;
            for (const auto& e : batch.events) seen.emplace(e.aggregate, versions[e.aggregate]);
            for (const auto& [aggregate, version] : seen) {
              batch.expectations.push_back({aggregate, lighthouse::ExpectedVersion::exact(version)});
            }
          };
          expect();
          for (int attempt = 0;; ++attempt) {
            try {
              auto r = store.append_batch(batch);
              for (std::size_t i = 0; i < r.events.size(); ++i) {
                versions[batch.events[i].aggregate] = r.events[i].aggregate_version;
                print_ack(r.events[i], batch.events[i].aggregate);
              }
              if (c.keys && appends % 10 == 1) {
                // The same batch again: an idempotent retry.
                auto again = store.append_batch(batch);
                bool same = again.replayed && again.events.size() == r.events.size();
                for (std::size_t i = 0; same && i < r.events.size(); ++i) same = again.events[i].id == r.events[i].id;
                if (!same) {
                  std::lock_guard lock(out_mutex);
                  std::printf("replay-mismatch %s\n", batch_id.c_str());
                  std::fflush(stdout);
                  failed = true;
                }
              }
              break;
            } catch (const lighthouse::Error& e) {
              if (c.shared && c.expect && e.code() == lighthouse::ErrorCode::wrong_expected_version &&
                  attempt < 1000) {
                versions[e.aggregate()] = e.actual_version().value_or(0);
                expect();
                continue;
              }
              std::lock_guard lock(out_mutex);
              std::printf("error %s %s\n", std::string(lighthouse::to_string(e.code())).c_str(), e.what());
              std::fflush(stdout);
              failed = true;
              break;
            }
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    const auto health = store.health();
    std::printf("health %s %s\n", std::string(lighthouse::to_string(health.state)).c_str(),
                health.reason.c_str());
  } catch (const lighthouse::Error& e) {
    std::printf("error %s %s\n", std::string(lighthouse::to_string(e.code())).c_str(), e.what());
    return 1;
  }
  return failed ? 1 : 0;
}
