// A child process for multi-process, crash and fault tests: appends events to
// a store and prints one line per acknowledged event,
//   ack ID AGGREGATE VERSION
// after its append returned (so the event is durable), and one line per
// failed append,
//   error CODE MESSAGE
//
// Usage: append_worker STORE EVENTS [options]
//   --threads N         appending threads (default 1)
//   --batch N           events per append_batch (default 1)
//   --aggregates N      aggregates per worker (default 10)
//   --prefix P          aggregate name prefix (default "agg")
//   --payload N         data bytes per event (default 64)
//   --map-size BYTES    initial map size
//   --expect            pass exact expected versions (per-thread aggregates)
//   --keep-going        continue after a failed append
//   --priority P        low, normal, high or critical
// At the end it prints the store's health as it sees it:
//   health STATE REASON
#include <atomic>
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
    else if (a == "--priority") c.priority = lighthouse::parse_priority(next()).value_or(c.priority);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  lighthouse::Options options;
  if (c.map_size != 0) options.map_size = c.map_size;
  std::atomic<bool> failed{false};
  try {
    auto store = lighthouse::Store::open(c.store, options);
    std::atomic<long> next_event{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < c.threads; ++t) {
      threads.emplace_back([&, t] {
        std::map<std::string, std::uint64_t> versions;
        long n;
        while ((n = next_event.fetch_add(c.batch)) < c.events && !(failed && !c.keep_going)) {
          lighthouse::Batch batch;
          batch.priority = c.priority;
          for (long k = n; k < n + c.batch && k < c.events; ++k) {
            lighthouse::EventData e;
            e.type = "Worked" + std::to_string(k % 8);
            // With --expect each thread owns its aggregates, so it knows their versions.
            e.aggregate = c.prefix + "-" + std::to_string(t) + "-" +
                          std::to_string(k % c.aggregates);
            e.content_type = lighthouse::ContentType::bytes;
            e.data = std::string(c.payload, static_cast<char>('a' + k % 26));
            batch.events.push_back(std::move(e));
          }
          if (c.expect) {
            std::map<std::string, std::uint64_t> seen;
            for (const auto& e : batch.events) seen.emplace(e.aggregate, versions[e.aggregate]);
            for (const auto& [aggregate, version] : seen) {
              batch.expectations.push_back({aggregate, lighthouse::ExpectedVersion::exact(version)});
            }
          }
          try {
            auto r = store.append_batch(batch);
            for (std::size_t i = 0; i < r.events.size(); ++i) {
              versions[batch.events[i].aggregate] = r.events[i].aggregate_version;
              print_ack(r.events[i], batch.events[i].aggregate);
            }
          } catch (const lighthouse::Error& e) {
            std::lock_guard lock(out_mutex);
            std::printf("error %s %s\n", std::string(lighthouse::to_string(e.code())).c_str(),
                        e.what());
            std::fflush(stdout);
            failed = true;
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
