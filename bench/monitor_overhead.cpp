// The SLA monitor's cost per append, in instructions: run under
//   valgrind --tool=callgrind ./bench/monitor_overhead on|off [events]
// and compare the two totals (callgrind counts instructions, which are
// repeatable on a shared machine where wall time is not).
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "lighthouse/lighthouse.h"

int main(int argc, char** argv) {
  if (argc < 2 || (std::strcmp(argv[1], "on") != 0 && std::strcmp(argv[1], "off") != 0)) return 2;
  const int events = argc > 2 ? std::atoi(argv[2]) : 2000;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("lighthouse-monitor-overhead-" + std::string(argv[1]));
  std::filesystem::remove_all(dir);
  lighthouse::Options options;
  options.monitor = std::strcmp(argv[1], "on") == 0;
  options.durability = lighthouse::Durability::no_meta_sync;
  {
    auto store = lighthouse::Store::open(dir, options);
    const std::string data(256, 'x');
    for (int i = 0; i < events; ++i) {
      lighthouse::EventData e;
      e.type = "OrderPlaced";
      e.aggregate = "agg-" + std::to_string(i % 100);
      e.data = data;
      store.append(std::move(e));
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
