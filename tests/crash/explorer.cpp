// crash_states: runs each workload of tests/crash/workload.cpp under the
// recorder, builds crash states from what it wrote (crash_model.h), and
// checks every state as a program would find the files after a power loss:
// the store opens, verifies clean (the structural check included), holds
// every event acknowledged before the crash point and never part of a
// batch; with no_meta_sync it may miss only the last transaction whose
// commit returned (and any in flight); an archive holds the old or the new
// valid archive; compact, import, backup, truncation, health transitions and
// checkpoints keep their promises.
//
// Usage: crash_states WORKLOAD_BINARY RECORDER_SO [--workloads a,b,...]
//          [--states N] [--seed S] [--dir TMP] [--dump-log yes]
// N states per workload (every sync point first, then every prefix of the
// writes, then random subsets at 4096- and 512-byte blocks). Prints one line
// per workload; on a failure, the state, the seed and what broke; exit 1.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "codec/record.h"
#include "crash/crash_model.h"
#include "lighthouse/lighthouse.h"
#include "support/process.h"

using namespace lighthouse;
using namespace lighthouse::crash;
namespace fs = std::filesystem;

namespace {

struct Config {
  std::string workload, recorder;
  std::vector<std::string> workloads{"single", "batched", "async", "single-nms", "batched-nms", "truncate",
                                     "compact", "export", "import", "backup", "health", "checkpoint",
                                     "upgrade"};
  std::size_t states = 120;
  std::uint64_t seed = std::random_device{}();
  fs::path dir;
  bool dump_log = false;  // print every recorded operation (for debugging the recorder)
};

// A mark of the workload, and where in the log it is.
struct Mark {
  std::size_t op;
  std::vector<std::string> words;
};

std::vector<Mark> marks_of(const std::vector<Op>& ops) {
  std::vector<Mark> out;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].kind != OpKind::mark) continue;
    std::istringstream lines(ops[i].data);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream in(line);
      Mark m{i, {}};
      for (std::string w; in >> w;) m.words.push_back(w);
      if (!m.words.empty()) out.push_back(std::move(m));
    }
  }
  return out;
}

// The commits of a store: the meta page writes to its data file.
std::vector<std::size_t> meta_writes(const std::vector<Op>& ops, const std::string& data_file) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    if ((op.kind == OpKind::write || op.kind == OpKind::dsync_write) && op.path == data_file &&
        op.data.size() == 120 && (op.offset == 32 || op.offset == 4096 + 32)) {
      out.push_back(i);
    }
  }
  return out;
}

struct Workload {
  std::string name, mode;
  bool no_meta_sync = false;
  std::vector<Op> ops;
  std::vector<Mark> marks;
  Snapshot start;
  std::string final_manifest;  // export: the manifest the export wrote
};

// What must hold of one crash state; "" when it does.
class Checker {
 public:
  Checker(const Workload& w, const fs::path& state) : w_(w), dir_(state) {}

  std::string check(std::size_t point) {
    point_ = point;
    try {
      if (w_.mode == "import") return check_import();
      if (w_.mode == "backup") {
        if (auto problem = check_backup(); !problem.empty()) return problem;
      }
      if (w_.mode == "export") {
        if (auto problem = check_archive(); !problem.empty()) return problem;
      }
      return check_store();
    } catch (const std::exception& e) {
      return std::string("threw: ") + e.what();
    }
  }

 private:
  std::vector<const Mark*> before(std::size_t op) const {
    std::vector<const Mark*> out;
    for (const auto& m : w_.marks) {
      if (m.op < op) out.push_back(&m);
    }
    return out;
  }
  bool done(const std::string& what) const {
    for (const Mark* m : before(point_)) {
      if (m->words.size() >= 2 && m->words[0] == "done" && m->words[1] == what) return true;
    }
    return false;
  }

  // The events the store must hold: acknowledged before the crash point —
  // with no_meta_sync, before the last commit that came before it.
  std::set<std::string> required_acks() const {
    std::size_t until = point_;
    if (w_.no_meta_sync) {
      const auto metas = meta_writes(w_.ops, "store/data.mdb");
      until = 0;
      for (std::size_t m : metas) {
        if (m < point_) until = m;
      }
    }
    std::set<std::string> ids;
    for (const Mark* m : before(until)) {
      if (m->words[0] == "ack") ids.insert(m->words[1]);
    }
    return ids;
  }

  // Every state is opened as a careful program would open a file found
  // after a power loss: the structure checked before LMDB reads a page.
  static Options checked() {
    Options o;
    o.health.window_seconds = 0;
    o.check_structure_on_open = true;
    return o;
  }

  std::string check_store() {
    Store store = Store::open(dir_ / "store", checked());
    const VerifyReport report = store.verify();
    if (!report.ok()) {
      const auto& p = report.problems.front();
      return "verify: " + p.category + " " + p.subject + ": " + p.detail;
    }
    std::set<std::string> stored;
    std::map<std::string, std::pair<std::size_t, std::size_t>> batches;
    for (const auto& e : store.query({})) {
      stored.insert(e.id.to_string());
      auto b = e.metadata.find("batch");
      if (b == e.metadata.end() || b->second == "setup") continue;
      auto& [seen, size] = batches[b->second];
      ++seen;
      size = std::stoul(e.metadata.at("size"));
    }
    for (const auto& id : required_acks()) {
      if (stored.count(id) == 0) return "acknowledged event " + id + " is missing";
    }
    for (const auto& [batch, counts] : batches) {
      if (counts.first != counts.second) {
        return "batch " + batch + " is partly there: " + std::to_string(counts.first) + " of " + std::to_string(counts.second);
      }
    }
    if (w_.mode == "compact" && stored.size() != 200) return "compact lost events: " + std::to_string(stored.size()) + " of 200";
    if (w_.mode == "truncate") return check_truncation(store);
    if (w_.mode == "upgrade") return check_upgrade(store);
    if (w_.mode == "health") return check_health(store);
    if (w_.mode == "checkpoint") return check_checkpoint(store);
    return "";
  }

  std::string check_truncation(Store& store) {
    const StoreStats s = store.stats();
    if (done("truncated") && s.base_sequence != 251) return "truncation returned, yet the base is " + std::to_string(s.base_sequence);
    if (s.base_sequence != 1 && s.base_sequence != 251) return "a base of " + std::to_string(s.base_sequence);
    return "";
  }

  // The old store or the new one, whole: format 1 until the swap, format 2
  // once upgrade returned; in either, the fixture's 40 events with their
  // IDs and content — their format-1 checksums chained reproduce the chain
  // the fixture's archive ends with.
  std::string check_upgrade(Store& store) {
    const StoreStats s = store.stats();
    if (done("upgraded") && s.format_version != 2) return "upgrade returned, yet the store is of format " + std::to_string(s.format_version);
    if (s.format_version != 1 && s.format_version != 2) return "format " + std::to_string(s.format_version);
    Sha256 chain{};
    std::size_t n = 0;
    for (const auto& e : store.query({})) {
      if (int(e.record_format) != int(s.format_version)) return "event " + e.id.to_string() + " is of another record format";
      chain = codec::chain_next(chain, codec::checksum_v1(e.id, codec::RecordFields::of(e)));
      ++n;
    }
    if (n != 40) return std::to_string(n) + " events of the fixture's 40";
    std::ifstream in(fs::path(LIGHTHOUSE_FIXTURES) / "format1" / "archive" / "manifest.json");
    const std::string manifest((std::istreambuf_iterator<char>(in)), {});
    if (manifest.find("\"" + to_hex(chain) + "\"") == std::string::npos) return "the events differ from the fixture's";
    return "";
  }

  std::string check_health(Store& store) {
    // healthy -> emergency -> healthy: the state is the last one returned
    // or the next (its transaction may be durable before it returned), and
    // its `$health.*` events are written with it.
    const std::vector<HealthState> sequence{HealthState::healthy, HealthState::emergency, HealthState::healthy};
    std::size_t returned = 0;
    for (const Mark* m : before(point_)) returned += m->words.size() >= 2 && m->words[1] == "health";
    Query q;
    q.type_prefix = "$health.";
    std::size_t events = 0;
    for (const auto& e : store.query(q)) events += !e.type.empty();
    if (events < returned || events > returned + 1 || events >= sequence.size()) {
      return std::to_string(events) + " health events after " + std::to_string(returned) + " transitions returned";
    }
    if (store.health().state != sequence[events]) return "the health state disagrees with its events";
    return "";
  }

  std::string check_checkpoint(Store& store) {
    std::vector<std::string> set;
    for (const auto& m : w_.marks) {
      if (m.words.size() == 4 && m.words[1] == "checkpoint") set.push_back(m.words[3]);
    }
    std::size_t returned = 0;
    for (const Mark* m : before(point_)) returned += m->words.size() == 4 && m->words[1] == "checkpoint";
    const auto stored = store.checkpoint("reader");
    const std::string at = stored ? stored->to_string() : "";
    const std::string last = returned == 0 ? "" : set[returned - 1];
    const std::string next = returned < set.size() ? set[returned] : last;
    if (at != last && at != next) return "checkpoint " + at + " is neither the last set (" + last + ") nor the next";
    return "";
  }

  std::string check_archive() {
    const ArchiveVerifyReport r = verify_archive(dir_ / "archive");
    if (!r.ok()) return "archive verify: " + r.problems.front().file + ": " + r.problems.front().detail;
    std::ifstream in(dir_ / "archive" / "manifest.json");
    const std::string manifest((std::istreambuf_iterator<char>(in)), {});
    const std::string& old = w_.start.files.at("archive/manifest.json");
    if (done("exported") && manifest != w_.final_manifest) return "the export returned but the archive is not the new one";
    if (manifest != old && manifest != w_.final_manifest) return "the manifest is neither the old nor the new one";
    return "";
  }

  std::string check_backup() {
    if (!done("backed-up")) return "";
    Options ro = checked();
    ro.read_only = true;
    Store copy = Store::open(dir_ / "backup", ro);
    if (!copy.verify().ok()) return "the backup returned but does not verify";
    if (copy.stats().event_count != 200) return "the backup holds " + std::to_string(copy.stats().event_count) + " events";
    return "";
  }

  std::string check_import() {
    const bool finished = done("imported");
    try {
      Store copy = Store::open(dir_ / "copy", checked());
      if (!copy.verify().ok()) return "the imported store does not verify";
      const auto n = copy.stats().event_count;
      if (n != 0 && n != 300) return "an import of " + std::to_string(n) + " of 300 events shows no mark";
      if (finished && n != 300) return "the import returned but the store holds " + std::to_string(n) + " events";
    } catch (const Error& e) {
      // Before it returned, a store being created or imported into may be
      // refused (interrupted, or not yet a whole LMDB file): clearly.
      if (finished) return std::string("the import returned but the store is refused: ") + e.what();
      if (e.code() != ErrorCode::corruption && e.code() != ErrorCode::not_found) return std::string("refused with ") + e.what();
    }
    return "";
  }

  const Workload& w_;
  fs::path dir_;
  std::size_t point_ = 0;
};

int run_child(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  testing::ChildResult r = testing::run(argv, env);
  return r.exit_code;
}

Workload record(const Config& c, const std::string& name) {
  Workload w;
  w.name = name;
  w.no_meta_sync = name.size() > 4 && name.substr(name.size() - 4) == "-nms";
  w.mode = w.no_meta_sync ? name.substr(0, name.size() - 4) : name;
  const fs::path work = c.dir / name / "work";
  fs::remove_all(c.dir / name);
  fs::create_directories(work);
  std::vector<std::string> argv{c.workload, w.mode, "setup", work.string()};
  if (w.no_meta_sync) argv.push_back("--no-meta-sync");
  if (run_child(argv, {}) != 0) throw std::runtime_error(name + ": the setup failed");
  w.start = take_snapshot(work);
  argv[2] = "run";
  const fs::path log = c.dir / name / "log";
  if (run_child(argv, {"LD_PRELOAD=" + c.recorder, "LH_RECORD_DIR=" + fs::canonical(work).string(),
                       "LH_RECORD_LOG=" + log.string(), "LH_RECORD_MARK_FD=987",
                       // (an ASan build would refuse a library loaded before its runtime)
                       "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0"}) != 0) {
    throw std::runtime_error(name + ": the recorded run failed");
  }
  w.ops = read_log(log);
  w.marks = marks_of(w.ops);
  if (c.dump_log) {
    for (std::size_t i = 0; i < w.ops.size(); ++i) {
      const Op& op = w.ops[i];
      std::cout << i << " " << static_cast<int>(op.kind) << " " << op.path << " " << op.path2 << " @" << op.offset
                << " +" << (op.kind == OpKind::fallocate || op.kind == OpKind::truncate ? op.length : op.data.size())
                << "\n";
    }
  }
  // The recorder's own check: replaying every recorded operation must give
  // exactly the files the run left (a write it missed would make every
  // state a lie).
  const fs::path replayed = c.dir / name / "replayed";
  Model(w.start, w.ops).materialize({w.ops.size(), 4096, CrashState::Writes::all, 0}, replayed);
  const Snapshot real = take_snapshot(work), model = take_snapshot(replayed);
  for (const auto& [path, bytes] : real.files) {
    auto it = model.files.find(path);
    if (it == model.files.end()) throw std::runtime_error(name + ": the replayed log lacks " + path);
    if (it->second != bytes) {
      std::size_t at = 0;
      while (at < bytes.size() && at < it->second.size() && bytes[at] == it->second[at]) ++at;
      throw std::runtime_error(name + ": the replayed log gives another " + path + " (" + std::to_string(it->second.size()) +
                               " bytes, not " + std::to_string(bytes.size()) + "; the first difference at byte " + std::to_string(at) + ")");
    }
  }
  for (const auto& [path, bytes] : model.files) {
    if (real.files.count(path) == 0) throw std::runtime_error(name + ": the replayed log has " + path + ", the run did not");
  }
  fs::remove_all(replayed);
  return w;
}

// The states of one workload: every sync point, every prefix of the writes
// (every point with all writes so far), then random subsets.
std::vector<CrashState> plan(const Model& model, std::size_t budget, std::mt19937_64& rng) {
  std::vector<CrashState> states;
  for (std::size_t p : model.sync_points()) states.push_back({p, 4096, CrashState::Writes::none, 0});
  std::vector<CrashState> prefixes;
  for (std::size_t p = 1; p <= model.ops().size(); ++p) prefixes.push_back({p, 4096, CrashState::Writes::all, 0});
  std::shuffle(prefixes.begin(), prefixes.end(), rng);
  // Every prefix when they fit in two thirds of the room (the rest is for
  // random subsets); a random choice of them when they do not.
  const std::size_t room = budget > states.size() ? budget - states.size() : 0;
  prefixes.resize(std::min(prefixes.size(), room * 2 / 3));
  states.insert(states.end(), prefixes.begin(), prefixes.end());
  // Random subsets where there is something to choose from: after a write
  // that is not yet durable (or a change of names).
  std::vector<std::size_t> open_points;
  for (std::size_t i = 0; i < model.ops().size(); ++i) {
    const OpKind k = model.ops()[i].kind;
    if (k != OpKind::sync && k != OpKind::dsync_write && k != OpKind::mark) open_points.push_back(i + 1);
  }
  if (open_points.empty()) open_points.push_back(model.ops().size());
  std::uniform_int_distribution<std::size_t> point(0, open_points.size() - 1);
  for (std::size_t i = 0; states.size() < budget; ++i) {
    states.push_back({open_points[point(rng)], i % 2 == 0 ? std::size_t{4096} : std::size_t{512},
                      CrashState::Writes::random, rng()});
  }
  if (states.size() > budget) states.resize(budget);
  return states;
}

// The checker's own test: the same workload as if every sync were a lie (no
// fsync reached the disk, and O_DSYNC writes were ordinary ones). At the end
// of such a run, with only what was durable before it on disk, every
// acknowledged event is gone — a checker that finds nothing wrong there
// cannot fail. Returns how many of `states` such states it found wrong.
std::size_t failures_without_syncs(const Workload& w, const fs::path& dir, std::size_t states) {
  std::vector<Op> lying;
  for (Op op : w.ops) {
    if (op.kind == OpKind::sync) continue;
    if (op.kind == OpKind::dsync_write) op.kind = OpKind::write;
    lying.push_back(std::move(op));
  }
  const Model model(w.start, lying);
  std::size_t failed = 0;
  for (std::size_t i = 0; i < states; ++i) {
    // The end of the run; nothing or a random part of what it wrote.
    const CrashState s{lying.size(), 4096, i == 0 ? CrashState::Writes::none : CrashState::Writes::random, i};
    model.materialize(s, dir);
    failed += !Checker(w, dir).check(lying.size()).empty();
  }
  return failed;
}

Config parse(int argc, char** argv) {
  if (argc < 3) throw std::runtime_error("usage: crash_states WORKLOAD_BINARY RECORDER_SO [--workloads a,b] [--states N] [--seed S] [--dir TMP]");
  Config c;
  c.workload = argv[1];
  c.recorder = argv[2];
  c.dir = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  c.dir /= "lighthouse-crash-states-" + std::to_string(::getpid());
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--workloads") {
      c.workloads.clear();
      std::istringstream in(value);
      for (std::string w; std::getline(in, w, ',');) c.workloads.push_back(w);
    } else if (flag == "--states") {
      c.states = std::stoul(value);
    } else if (flag == "--seed") {
      c.seed = std::stoull(value);
    } else if (flag == "--dump-log") {
      c.dump_log = value == "yes";
    } else if (flag == "--dir") {
      c.dir = fs::path(value) / ("lighthouse-crash-states-" + std::to_string(::getpid()));
    } else {
      throw std::runtime_error("unknown option " + flag);
    }
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Config c = parse(argc, argv);
    std::cout << "seed " << c.seed << " (--seed " << c.seed << " explores the same states)\n";
    std::size_t total = 0, total_distinct = 0, failures = 0;
    for (const auto& name : c.workloads) {
      const auto start = std::chrono::steady_clock::now();
      Workload w = record(c, name);
      const Model model(w.start, w.ops);
      if (w.mode == "export") {
        const fs::path final_state = c.dir / name / "final";
        model.materialize({w.ops.size(), 4096, CrashState::Writes::all, 0}, final_state);
        std::ifstream in(final_state / "archive" / "manifest.json");
        w.final_manifest.assign(std::istreambuf_iterator<char>(in), {});
      }
      std::mt19937_64 rng(c.seed ^ std::hash<std::string>{}(name));
      const auto states = plan(model, c.states, rng);
      const fs::path state_dir = c.dir / name / "state";
      std::size_t failed = 0;
      std::set<std::size_t> distinct;  // what the states hold, hashed: many choices give the same files
      for (const auto& s : states) {
        model.materialize(s, state_dir);
        std::string all;
        for (const auto& [path, bytes] : take_snapshot(state_dir).files) all += path + '\0' + bytes + '\0';
        distinct.insert(std::hash<std::string>{}(all));
        const std::string problem = Checker(w, state_dir).check(s.point);
        if (problem.empty()) continue;
        if (++failed <= 3) {
          std::cout << name << ": " << s.describe() << ": " << problem << "\n";
          fs::copy(state_dir, c.dir / name / ("failed-" + std::to_string(failed)), fs::copy_options::recursive);
        }
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cout << name << ": " << states.size() << " crash states (" << distinct.size() << " distinct) from "
                << w.ops.size() << " recorded operations, " << failed << " failed (" << seconds << " s)\n";
      total_distinct += distinct.size();
      total += states.size();
      failures += failed;
      if (name == "single") {
        const std::size_t caught = failures_without_syncs(w, state_dir, 10);
        std::cout << name << ", every sync a lie: " << caught << " of 10 states found wrong (the checker can fail)\n";
        if (caught == 0) {
          std::cout << name << ": the checker found nothing wrong after a run whose syncs all lied: it cannot fail\n";
          ++failures;
          ++failed;
        }
      }
      if (failed == 0) fs::remove_all(c.dir / name);
    }
    std::cout << total << " crash states explored (" << total_distinct << " distinct), " << failures << " failed" << (failures ? " (kept in " + c.dir.string() + ")" : "")
              << "\n";
    if (failures == 0) fs::remove_all(c.dir);
    return failures == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "crash_states: " << e.what() << "\n";
    return 2;
  }
}
