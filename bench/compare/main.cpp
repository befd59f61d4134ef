// bench/compare: Lighthouse side by side with raw LMDB, SQLite and RocksDB on
// the same data in the same run. Prints one table with the ratio Lighthouse /
// each peer, and with --json writes rows {"workload", "system", "value", "unit"}.
//
// Workloads (256-byte payloads, 8 types; write workloads under both the
// uniform and the lifecycle aggregate distribution):
//   1 batched append, 1,000 events per durable transaction (--events N)
//   2 durable single-event appends from 16 threads, each waiting (--seconds)
//   3 one thread, 4,096 asynchronous appends in flight, durable (--seconds)
//   4 query by type over the workload-1 uniform store
//   5 read the 1,000-event aggregate "hot" of that store: p50/p99
//   6 open that store (in a new process and reopened in this one, medians of
//     5); memory growth of a query over all of it
// Systems take turns workload by workload; --repeat N runs the write
// workloads N times and reports each figure's median. The system
// lighthouse-traced is Lighthouse with tracing (--trace-sampling, default 1;
// --trace-sink): run beside lighthouse, the table's L/lighthouse-traced is
// what tracing costs, and each write workload's ratio is also given per
// round (the two ran seconds apart) with its median.
#include <atomic>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "otlp/exporter.h"
#include "system.h"
#include "workloads.h"

namespace fs = std::filesystem;
using namespace compare;

namespace {

struct Row {
  std::string workload;
  std::string system;
  double value;
  std::string unit;
  bool higher_is_better;
};

struct Run {
  std::uint64_t events = 1'000'000;
  double seconds = 5;
  fs::path dir = "compare-data";
  std::vector<std::string> systems = {"lighthouse", "lmdb", "sqlite", "rocksdb"};
  std::vector<int> workloads = {1, 2, 3, 4, 5, 6};
  int repeat = 1;
  std::vector<Row> rows;

  // One row per (workload, system): the median of the rounds measured.
  void keep_medians() {
    std::vector<Row> kept;
    std::map<std::pair<std::string, std::string>, std::vector<double>> values;
    for (const auto& r : rows) {
      auto& v = values[{r.workload, r.system}];
      if (v.empty()) kept.push_back(r);
      v.push_back(r.value);
    }
    for (auto& r : kept) r.value = median(values[{r.workload, r.system}]);
    rows = std::move(kept);
  }

  bool wants(int w) const { return std::find(workloads.begin(), workloads.end(), w) != workloads.end(); }
  void add(const std::string& workload, const std::string& system, double value, const std::string& unit,
           bool higher = true) {
    rows.push_back({workload, system, value, unit, higher});
    std::fprintf(stderr, "  %-44s %-10s %14.3f %s\n", workload.c_str(), system.c_str(), value, unit.c_str());
  }
};

std::unique_ptr<System> make(const std::string& name) {
  if (name == "lighthouse") return make_lighthouse();
  if (name == "lighthouse-traced") return make_lighthouse(true);
  if (name == "lmdb") return make_lmdb();
  if (name == "sqlite") return make_sqlite();
  if (name == "rocksdb") return make_rocksdb();
  throw std::runtime_error("unknown system '" + name + "'");
}

fs::path fresh(const Run& run, const std::string& system, const std::string& what) {
  fs::path dir = run.dir / system / what;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Workload 1: returns with the store open in `sys`.
void batched(Run& run, System& sys, Distribution d, const fs::path& dir, bool report) {
  sys.open(dir);
  EventStream stream(d, 1, run.events / 1000);  // "hot" gets 1,000 events at any size
  std::vector<BenchEvent> batch;
  batch.reserve(1000);
  const std::uint64_t written_before = write_bytes();
  auto start = Clock::now();
  for (std::uint64_t n = 0; n < run.events;) {
    batch.clear();
    for (int i = 0; i < 1000 && n < run.events; ++i, ++n) batch.push_back(stream.next());
    sys.append_batch(batch);
  }
  sys.settle();
  double elapsed = seconds_since(start);
  if (!report) return;
  std::string w = std::string("1 batched append x1000, ") + to_string(d);
  run.add(w, sys.name(), static_cast<double>(run.events) / elapsed, "events/s");
  run.add(w + ": bytes written", sys.name(),
          static_cast<double>(write_bytes() - written_before) / static_cast<double>(run.events),
          "bytes/event", false);
}

void threads16(Run& run, System& sys, Distribution d, const fs::path& dir) {
  sys.open(dir);
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::vector<double> latencies;
  std::uint64_t total = 0;
  const std::uint64_t written_before = write_bytes();
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      EventStream stream(d, 100 + static_cast<std::uint64_t>(t));
      std::vector<double> mine;
      while (!stop) {
        BenchEvent e = stream.next();
        auto begin = Clock::now();
        sys.append_one(e);
        mine.push_back(seconds_since(begin) * 1000);
      }
      std::lock_guard lock(mutex);
      total += mine.size();
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(run.seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double elapsed = seconds_since(start);
  sys.settle();
  std::string w = std::string("2 durable appends, 16 threads, ") + to_string(d);
  run.add(w, sys.name(), static_cast<double>(total) / elapsed, "events/s");
  run.add(w + ": p99", sys.name(), percentiles(latencies).p99_ms, "ms", false);
  run.add(w + ": bytes written", sys.name(),
          static_cast<double>(write_bytes() - written_before) / static_cast<double>(total),
          "bytes/event", false);
  sys.close();
}

void async4096(Run& run, System& sys, Distribution d, const fs::path& dir) {
  sys.open(dir);
  EventStream stream(d, 7);
  std::deque<std::pair<Ticket, Clock::time_point>> in_flight;
  std::vector<double> latencies;
  const std::uint64_t written_before = write_bytes();
  auto start = Clock::now();
  for (int i = 0; i < 4096; ++i) in_flight.emplace_back(sys.append_async(stream.next()), Clock::now());
  std::uint64_t done = 0;
  while (seconds_since(start) < run.seconds) {
    in_flight.front().first.wait();
    latencies.push_back(seconds_since(in_flight.front().second) * 1000);
    in_flight.pop_front();
    ++done;
    in_flight.emplace_back(sys.append_async(stream.next()), Clock::now());
  }
  double elapsed = seconds_since(start);
  for (auto& f : in_flight) f.first.wait();
  sys.settle();
  std::string w = std::string("3 async appends, 4096 in flight, ") + to_string(d);
  run.add(w, sys.name(), static_cast<double>(done) / elapsed, "events/s");
  run.add(w + ": p99", sys.name(), percentiles(latencies).p99_ms, "ms", false);
  run.add(w + ": bytes written", sys.name(),
          static_cast<double>(write_bytes() - written_before) / static_cast<double>(done + 4096),
          "bytes/event", false);
  if (std::uint64_t commits = sys.commits(); commits > 0) {
    run.add(w + ": events per commit", sys.name(), static_cast<double>(done + 4096) / static_cast<double>(commits),
            "events", true);
  }
  sys.close();
}

const char* to_string(Checks checks) {
  return checks == Checks::on ? "on" : checks == Checks::full ? "full" : "off";
}

void reads(Run& run, System& sys) {
  if (run.wants(4)) {
    for (Checks checks : {Checks::on, Checks::full, Checks::off}) {
      if (checks == Checks::full && !sys.name().starts_with("lighthouse")) continue;  // the others have no second level
      double best = 0;
      for (int rep = 0; rep < 3; ++rep) {
        auto start = Clock::now();
        std::uint64_t n = sys.query_type("OrderPlaced", checks);
        best = std::max(best, static_cast<double>(n) / seconds_since(start));
      }
      run.add(std::string("4 query by type, checksums ") + to_string(checks), sys.name(), best, "events/s");
    }
  }
  if (run.wants(5)) {
    for (Checks checks : {Checks::on, Checks::full, Checks::off}) {
      if (checks == Checks::full && !sys.name().starts_with("lighthouse")) continue;
      std::vector<double> latencies;
      for (int rep = 0; rep < 300; ++rep) {
        auto start = Clock::now();
        if (sys.read_aggregate("hot", checks) == 0) throw std::runtime_error("aggregate 'hot' is empty");
        latencies.push_back(seconds_since(start) * 1000);
      }
      auto p = percentiles(latencies);
      const std::string w = std::string("5 read a 1,000-event aggregate") +
                            (checks == Checks::on ? "" : std::string(", checksums ") + to_string(checks));
      run.add(w + ": p50", sys.name(), p.p50_ms, "ms", false);
      run.add(w + ": p99", sys.name(), p.p99_ms, "ms", false);
    }
  }
}

// Runs `compare --open-only SYSTEM DIR` and returns the milliseconds it
// prints: the time of the system's open of DIR in a fresh process.
double open_in_child(const std::string& system, const fs::path& dir) {
  int out[2];
  if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out[0]);
    ::close(out[1]);
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    ::execl("/proc/self/exe", "compare", "--open-only", system.c_str(), dir.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buffer[256];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || text.empty()) {
    throw std::runtime_error("measuring the open of " + system + " in a child process failed");
  }
  return std::stod(text);
}

void open_and_scan(Run& run, System& sys, const fs::path& dir) {
  // Opening is measured as a program meets it: in a new process (this
  // program run again with --open-only), five times, the median. In this
  // process it would depend on what the earlier workloads left in malloc.
  // Reopened in this process too (what a long-running program that closes
  // and reopens its store sees): also the median of five.
  sys.close();
  std::vector<double> opens;
  for (int i = 0; i < 5; ++i) opens.push_back(open_in_child(sys.name(), dir));
  run.add("6 open the store, new process", sys.name(), median(opens), "ms", false);
  opens.clear();
  for (int i = 0; i < 5; ++i) {
    auto start = Clock::now();
    sys.open(dir);
    opens.push_back(seconds_since(start) * 1000);
    if (i < 4) sys.close();
  }
  run.add("6 open the store, reopened in this process", sys.name(), median(opens), "ms", false);
  malloc_trim(0);  // freed memory of earlier workloads must not hide growth
  const std::uint64_t before = anonymous_rss();
  std::uint64_t peak = before;
  std::uint64_t n = sys.scan_all([&] { peak = std::max(peak, anonymous_rss()); });
  if (n != run.events) throw std::runtime_error(sys.name() + " scanned " + std::to_string(n) + " events");
  run.add("6 query over all events: memory growth", sys.name(),
          static_cast<double>(peak - before) / (1 << 20), "MiB", false);
}

// Each write workload's throughput with tracing over without, round by
// round (in a round the two ran one after the other), and the median of the
// rounds: less moved by the machine's drift over a run than the ratio of
// the two medians in the table. Added as rows "<workload>: traced/untraced".
void print_tracing_ratios(Run& run) {
  std::vector<std::string> order;
  std::map<std::string, std::map<std::string, std::vector<double>>> values;
  for (const auto& r : run.rows) {
    if (r.unit != "events/s") continue;
    if (!values.count(r.workload)) order.push_back(r.workload);
    values[r.workload][r.system].push_back(r.value);
  }
  bool any = false;
  for (const auto& w : order) {
    const auto& plain = values[w]["lighthouse"];
    const auto& traced = values[w]["lighthouse-traced"];
    const std::size_t rounds = std::min(plain.size(), traced.size());
    if (rounds == 0) continue;
    if (!any) std::printf("\ntracing's cost, lighthouse-traced / lighthouse, round by round:\n");
    any = true;
    std::vector<double> ratios;
    std::printf("  %s:", w.c_str());
    for (std::size_t i = 0; i < rounds; ++i) {
      ratios.push_back(plain[i] > 0 ? traced[i] / plain[i] : 0);
      std::printf(" %.3f", ratios.back());
    }
    const double m = median(ratios);
    std::printf("  median %.3f (%+.1f %%)\n", m, (m - 1) * 100);
    run.rows.push_back({w + ": traced/untraced, median of rounds", "lighthouse-traced", m, "ratio", true});
  }
}

void print_table(const Run& run) {
  std::vector<std::string> order;
  std::map<std::string, std::map<std::string, Row>> table;
  for (const auto& r : run.rows) {
    if (!table.count(r.workload)) order.push_back(r.workload);
    table[r.workload][r.system] = r;
  }
  int width = 8;
  for (const auto& w : order) width = std::max(width, static_cast<int>(w.size()));
  std::printf("\n%-*s %-11s", width, "workload", "unit");
  for (const auto& s : run.systems) std::printf(" %12s", s.c_str());
  for (const auto& s : run.systems) if (s != "lighthouse") std::printf(" %10s", ("L/" + s).c_str());
  std::printf("\n");
  for (const auto& w : order) {
    const auto& row = table[w];
    std::printf("%-*s %-11s", width, w.c_str(), row.begin()->second.unit.c_str());
    for (const auto& s : run.systems) {
      if (row.count(s)) std::printf(" %12.3f", row.at(s).value);
      else std::printf(" %12s", "-");
    }
    for (const auto& s : run.systems) {
      if (s == "lighthouse") continue;
      if (row.count(s) && row.count("lighthouse") && row.at(s).value > 0) {
        std::printf(" %9.2fx", row.at("lighthouse").value / row.at(s).value);
      } else {
        std::printf(" %10s", "-");
      }
    }
    std::printf("%s\n", row.begin()->second.higher_is_better ? "" : "  (lower is better)");
  }
}

}  // namespace

int main(int argc, char** argv) try {
  // The child of open_in_child: open, print the milliseconds, close.
  if (argc == 4 && std::string(argv[1]) == "--open-only") {
    auto sys = make(argv[2]);
    auto start = Clock::now();
    sys->open(argv[3]);
    const double ms = seconds_since(start) * 1000;
    sys->close();
    std::printf("%.6f\n", ms);
    return 0;
  }
  Run run;
  std::string json_path, systems = "lighthouse,lmdb,sqlite,rocksdb", workloads = "1,2,3,4,5,6";
  CLI::App app("Lighthouse against raw LMDB, SQLite and RocksDB, on the same data in one run", "compare");
  app.add_option("--events", run.events, "Events in the workload-1 stores (default 1,000,000)")
      ->check(CLI::Range(std::uint64_t{1000}, std::uint64_t{1} << 40));
  app.add_option("--seconds", run.seconds, "Duration of workloads 2 and 3 (default 5)")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--dir", run.dir, "Where the stores are written (default ./compare-data)");
  app.add_option("--systems", systems,
                 "Comma-separated subset of lighthouse,lmdb,sqlite,rocksdb, and lighthouse-traced (Lighthouse with "
                 "tracing; not in the default set)");
  app.add_option("--workloads", workloads, "Comma-separated subset of 1..6");
  app.add_option("--repeat", run.repeat,
                 "Rounds of workloads 1, 2 and 3 (the writes); each of their figures is the median of its "
                 "rounds (default 1)")
      ->check(CLI::Range(1, 99));
  app.add_option("--json", json_path, "Write the results as JSON rows to this file");
  double trace_sampling = -1;
  app.add_option("--trace-sampling", trace_sampling,
                 "The system lighthouse-traced traces its stores at this ratio (0..1, default 1) into the tool's "
                 "OTLP exporter, whose batches are encoded and discarded; the spans exported and dropped are "
                 "reported")
      ->check(CLI::Range(0.0, 1.0));
  std::string trace_sink = "otlp";
  app.add_option("--trace-sink", trace_sink,
                 "otlp (default): the tool's exporter, as above; discard: a sink that counts each span and frees it "
                 "on the thread that ended it (the library's own cost, without an exporter)")
      ->check(CLI::IsMember({"otlp", "discard"}));
  CLI11_PARSE(app, argc, argv);
  auto split = [](const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');) out.push_back(item);
    return out;
  };
  run.systems = split(systems);
  const bool traced = std::find(run.systems.begin(), run.systems.end(), "lighthouse-traced") != run.systems.end();
  if (!traced && (trace_sampling >= 0 || app.count("--trace-sink") > 0)) {
    std::fprintf(stderr,
                 "compare: --trace-sampling and --trace-sink are for the system lighthouse-traced; add it to "
                 "--systems (e.g. --systems lighthouse,lighthouse-traced)\n");
    return 2;
  }
  if (traced && trace_sampling < 0) trace_sampling = 1;
  std::shared_ptr<lighthouse::tool::otlp::BatchSpanProcessor> exporter;
  struct CountingSink final : lighthouse::tracing::SpanSink {
    std::atomic<std::uint64_t> spans{0};
    void on_end(lighthouse::tracing::SpanData) noexcept override { spans.fetch_add(1, std::memory_order_relaxed); }
  };
  std::shared_ptr<CountingSink> counting;
  if (trace_sampling >= 0 && trace_sink == "discard") {
    counting = std::make_shared<CountingSink>();
    set_lighthouse_tracing(counting, trace_sampling);
  } else if (trace_sampling >= 0) {
    lighthouse::tool::otlp::ExporterConfig config;
    config.endpoint = "http://127.0.0.1:1/v1/traces";
    exporter = std::make_shared<lighthouse::tool::otlp::BatchSpanProcessor>(
        config, [](const std::string&, std::chrono::milliseconds) { return lighthouse::tool::otlp::HttpReply{200, {}}; });
    set_lighthouse_tracing(exporter, trace_sampling);
  }
  if (run.systems.empty()) {
    std::fprintf(stderr, "compare: --systems names no system\n");
    return 2;
  }
  for (std::size_t i = 0; i < run.systems.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (run.systems[i] == run.systems[j]) {
        std::fprintf(stderr, "compare: --systems names '%s' twice\n", run.systems[i].c_str());
        return 2;
      }
    }
  }
  run.workloads.clear();
  for (const auto& w : split(workloads)) {
    if (w.size() != 1 || w[0] < '1' || w[0] > '6') {
      std::fprintf(stderr, "compare: --workloads: '%s' is not a workload (1 to 6)\n", w.c_str());
      return 2;
    }
    run.workloads.push_back(w[0] - '0');
  }
  if (run.workloads.empty()) {
    std::fprintf(stderr, "compare: --workloads names no workload\n");
    return 2;
  }
  for (const auto& s : run.systems) make(s);  // refuses unknown names before any work

  // Workload by workload, every system in turn, so that the systems a ratio
  // compares run minutes apart at most (the machine's disk and writeback move
  // over a run); each round starts with the next system, and with --repeat
  // every figure is the median of its rounds. A store is removed, and the
  // removal synced, before the next system runs.
  auto rotated = [&](int round) {
    std::vector<std::string> order;
    for (std::size_t i = 0; i < run.systems.size(); ++i) {
      order.push_back(run.systems[(i + static_cast<std::size_t>(round)) % run.systems.size()]);
    }
    return order;
  };
  auto discard = [&](const std::string& name) {
    fs::remove_all(run.dir / name);
    ::sync();
  };
  using Timed = void (*)(Run&, System&, Distribution, const fs::path&);
  for (Distribution d : {Distribution::lifecycle, Distribution::uniform}) {
    // Workloads 2 and 3: every system in turn, on a store of its own.
    auto in_turn = [&](int round, Timed workload, const std::string& store) {
      for (const auto& name : rotated(round)) {
        auto sys = make(name);
        workload(run, *sys, d, fresh(run, name, store + to_string(d)));
        sys.reset();
        discard(name);
      }
    };
    for (int round = 0; round < run.repeat; ++round) {
      if (run.wants(2)) in_turn(round, threads16, "threads-");
      if (run.wants(3)) in_turn(round, async4096, "async-");
    }
    // Workload 1; the reads (4-6) use the last round's uniform store.
    const bool needs_store = d == Distribution::uniform && (run.wants(4) || run.wants(5) || run.wants(6));
    if (!run.wants(1) && !needs_store) continue;
    const int rounds = run.wants(1) ? run.repeat : 1;
    for (int round = 0; round < rounds; ++round) {
      for (const auto& name : rotated(round)) {
        auto sys = make(name);
        fs::path dir = fresh(run, name, std::string("batched-") + to_string(d));
        batched(run, *sys, d, dir, run.wants(1));
        if (needs_store && round == rounds - 1) {
          reads(run, *sys);
          if (run.wants(6)) open_and_scan(run, *sys, dir);
        }
        sys->close();
        sys.reset();
        discard(name);
      }
    }
  }
  if (traced) print_tracing_ratios(run);
  run.keep_medians();
  print_table(run);
  if (counting) {
    std::printf("tracing at %g into a discarding sink: %llu spans\n", trace_sampling,
                static_cast<unsigned long long>(counting->spans.load()));
  }
  if (exporter) {
    exporter->shutdown();
    const auto c = exporter->counters();
    std::printf("tracing at %g: %llu spans exported, %llu dropped\n", trace_sampling,
                static_cast<unsigned long long>(c.exported), static_cast<unsigned long long>(c.dropped));
    run.rows.push_back({"tracing: spans exported", "lighthouse-traced", static_cast<double>(c.exported), "spans", false});
    run.rows.push_back({"tracing: spans dropped", "lighthouse-traced", static_cast<double>(c.dropped), "spans", false});
  }
  if (!json_path.empty()) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : run.rows) {
      rows.push_back({{"workload", r.workload}, {"system", r.system}, {"value", r.value}, {"unit", r.unit}});
    }
    std::ofstream(json_path) << rows.dump(2) << '\n';
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "compare: %s\n", e.what());
  return 1;
}
