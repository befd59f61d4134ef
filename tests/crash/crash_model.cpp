#include "crash/crash_model.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace lighthouse::crash {
namespace fs = std::filesystem;

// --- The log -------------------------------------------------------------------

namespace {

class LogReader {
 public:
  explicit LogReader(std::string bytes) : bytes_(std::move(bytes)) {}
  bool done() const { return pos_ == bytes_.size(); }
  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)[0]); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(le(take(4))); }
  std::uint64_t u64() { return le(take(8)); }
  std::string str() { return std::string(take(u32())); }
  std::string_view take(std::size_t n) {
    if (bytes_.size() - pos_ < n) throw std::runtime_error("the recorder log is cut short");
    std::string_view out(bytes_.data() + pos_, n);
    pos_ += n;
    return out;
  }

 private:
  static std::uint64_t le(std::string_view b) {
    std::uint64_t v = 0;
    for (std::size_t i = b.size(); i-- > 0;) v = (v << 8) | static_cast<unsigned char>(b[i]);
    return v;
  }
  std::string bytes_;
  std::size_t pos_ = 0;
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

std::vector<Op> read_log(const fs::path& log) {
  LogReader r(read_file(log));
  std::vector<Op> ops;
  while (!r.done()) {
    Op op;
    op.kind = static_cast<OpKind>(r.u8());
    if (op.kind == OpKind::mark) {
      op.data = r.str();
      ops.push_back(std::move(op));
      continue;
    }
    op.path = r.str();
    switch (op.kind) {
      case OpKind::write:
      case OpKind::dsync_write:
        op.offset = r.u64();
        op.data = r.str();
        break;
      case OpKind::truncate: op.length = r.u64(); break;
      case OpKind::fallocate:
        op.offset = r.u64();
        op.length = r.u64();
        break;
      case OpKind::rename: op.path2 = r.str(); break;
      case OpKind::sync:
      case OpKind::create:
      case OpKind::mkdir:
      case OpKind::unlink:
      case OpKind::rmdir: break;
      default: throw std::runtime_error("the recorder log holds an unknown operation");
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

Snapshot take_snapshot(const fs::path& dir) {
  Snapshot s;
  s.dirs.insert("");
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    const std::string rel = fs::relative(entry.path(), dir).string();
    if (entry.is_directory()) {
      s.dirs.insert(rel);
    } else if (entry.is_regular_file() && entry.path().filename() != "lock.mdb") {
      s.files[rel] = read_file(entry.path());
    }
  }
  return s;
}

std::string CrashState::describe() const {
  const char* w = writes == Writes::none ? "only what was durable" : writes == Writes::all ? "every write" : "a random subset";
  return "crash after op " + std::to_string(point) + ", " + w + " of the writes since the last syncs, " +
         std::to_string(block) + "-byte blocks" + (writes == Writes::random ? ", seed " + std::to_string(seed) : "");
}

// --- The replay ------------------------------------------------------------------

namespace {

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

// A version of one block: the page cache's content after a write.
struct Version {
  std::string bytes;
  std::uint64_t end = 0;  // the file's size this version implies (at least)
};

struct Inode {
  std::string durable, cache;
  std::map<std::uint64_t, std::vector<Version>> pending;  // block -> versions not yet durable
};

struct NameOp {
  OpKind kind;
  std::string path, path2;
};

struct Names {
  std::map<std::string, std::size_t> files;  // path -> inode
  std::set<std::string> dirs;
  void apply(const NameOp& op, std::size_t inode) {
    switch (op.kind) {
      case OpKind::create: files[op.path] = inode; break;
      case OpKind::mkdir: dirs.insert(op.path); break;
      case OpKind::rename:
        if (auto it = files.find(op.path); it != files.end()) {
          files[op.path2] = it->second;
          files.erase(op.path);
        }
        break;
      case OpKind::unlink: files.erase(op.path); break;
      case OpKind::rmdir: dirs.erase(op.path); break;
      default: break;
    }
  }
};

class Replay {
 public:
  Replay(const Snapshot& start, std::size_t block) : block_(block) {
    for (const auto& [path, bytes] : start.files) {
      names_.files[path] = cache_.files[path] = inodes_.size();
      inodes_.push_back({bytes, bytes, {}});
    }
    names_.dirs = cache_.dirs = start.dirs;
  }

  void apply(const Op& op) {
    switch (op.kind) {
      case OpKind::write: write(op, false); break;
      case OpKind::dsync_write: write(op, true); break;
      case OpKind::fallocate: {
        Op zeros = op;
        zeros.data.assign(op.length, '\0');
        write(zeros, false);
        break;
      }
      case OpKind::truncate: {
        Inode& f = inode(op.path);
        f.cache.resize(op.length);
        f.durable.resize(std::min<std::uint64_t>(f.durable.size(), op.length));
        f.pending.erase(f.pending.lower_bound((op.length + block_ - 1) / block_), f.pending.end());
        break;
      }
      case OpKind::sync: sync(op.path); break;
      case OpKind::create:
        inodes_.push_back({});
        cache_.apply({op.kind, op.path, op.path2}, inodes_.size() - 1);
        pending_names_.push_back({{op.kind, op.path, op.path2}, inodes_.size() - 1});
        break;
      case OpKind::mkdir:
      case OpKind::rename:
      case OpKind::unlink:
      case OpKind::rmdir:
        cache_.apply({op.kind, op.path, op.path2}, 0);
        pending_names_.push_back({{op.kind, op.path, op.path2}, 0});
        break;
      case OpKind::mark: break;
    }
  }

  void write_out(const CrashState& state, const fs::path& dir) const {
    std::mt19937_64 rng(state.seed);
    Names names = names_;
    std::size_t keep = 0;
    if (state.writes == CrashState::Writes::all) keep = pending_names_.size();
    if (state.writes == CrashState::Writes::random) keep = std::uniform_int_distribution<std::size_t>(0, pending_names_.size())(rng);
    for (std::size_t i = 0; i < keep; ++i) names.apply(pending_names_[i].first, pending_names_[i].second);
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::vector<std::string> dirs(names.dirs.begin(), names.dirs.end());
    std::sort(dirs.begin(), dirs.end());  // parents first
    for (const auto& d : dirs) {
      if (!d.empty() && (parent_of(d).empty() || names.dirs.count(parent_of(d)) != 0)) fs::create_directory(dir / d);
    }
    for (const auto& [path, id] : names.files) {
      if (!parent_of(path).empty() && names.dirs.count(parent_of(path)) == 0) continue;
      if (!fs::is_directory(dir / parent_of(path))) continue;
      std::ofstream(dir / path, std::ios::binary) << contents(inodes_[id], state, rng);
    }
  }

 private:
  Inode& inode(const std::string& path) {
    auto it = cache_.files.find(path);
    if (it == cache_.files.end()) {
      inodes_.push_back({});
      it = cache_.files.emplace(path, inodes_.size() - 1).first;
    }
    return inodes_[it->second];
  }

  void write(const Op& op, bool durable) {
    Inode& f = inode(op.path);
    const std::uint64_t end = op.offset + op.data.size();
    if (f.cache.size() < end) f.cache.resize(end);
    f.cache.replace(op.offset, op.data.size(), op.data);
    if (op.data.empty()) return;
    for (std::uint64_t b = op.offset / block_; b <= (end - 1) / block_; ++b) {
      const std::uint64_t from = b * block_;
      Version v{f.cache.substr(from, block_), std::min<std::uint64_t>(f.cache.size(), from + block_)};
      if (durable) {
        // Durable on return: later writeback of the older versions would
        // carry this content too.
        if (f.durable.size() < v.end) f.durable.resize(v.end);
        f.durable.replace(from, v.bytes.size(), v.bytes);
        f.pending.erase(b);
      } else {
        f.pending[b].push_back(std::move(v));
      }
    }
  }

  void sync(const std::string& path) {
    if (cache_.dirs.count(path) != 0 && cache_.files.count(path) == 0) {
      // Every change of a name in this directory so far is durable — and,
      // the journal being in order, every change before the last of them.
      std::size_t last = 0;
      for (std::size_t i = 0; i < pending_names_.size(); ++i) {
        const NameOp& op = pending_names_[i].first;
        if (parent_of(op.path) == path || (op.kind == OpKind::rename && parent_of(op.path2) == path)) last = i + 1;
      }
      for (std::size_t i = 0; i < last; ++i) names_.apply(pending_names_[i].first, pending_names_[i].second);
      pending_names_.erase(pending_names_.begin(), pending_names_.begin() + static_cast<std::ptrdiff_t>(last));
      return;
    }
    Inode& f = inode(path);
    f.durable = f.cache;
    f.pending.clear();
  }

  std::string contents(const Inode& f, const CrashState& state, std::mt19937_64& rng) const {
    std::string out = f.durable;
    for (const auto& [b, versions] : f.pending) {
      std::size_t pick = 0;  // 0: the durable version; k: versions[k - 1]
      if (state.writes == CrashState::Writes::all) pick = versions.size();
      if (state.writes == CrashState::Writes::random) pick = std::uniform_int_distribution<std::size_t>(0, versions.size())(rng);
      if (pick == 0) continue;
      const Version& v = versions[pick - 1];
      if (out.size() < v.end) out.resize(v.end);
      out.replace(b * block_, v.bytes.size(), v.bytes);
    }
    return out;
  }

  std::size_t block_;
  std::vector<Inode> inodes_;
  Names names_;  // durable
  Names cache_;  // as the process saw them
  std::vector<std::pair<NameOp, std::size_t>> pending_names_;
};

}  // namespace

void Model::materialize(const CrashState& state, const fs::path& dir) const {
  Replay replay(start_, state.block);
  for (std::size_t i = 0; i < state.point && i < ops_.size(); ++i) replay.apply(ops_[i]);
  replay.write_out(state, dir);
}

std::vector<std::size_t> Model::sync_points() const {
  std::vector<std::size_t> points{0};
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    if (ops_[i].kind == OpKind::sync || ops_[i].kind == OpKind::dsync_write) points.push_back(i + 1);
  }
  if (points.back() != ops_.size()) points.push_back(ops_.size());
  return points;
}

}  // namespace lighthouse::crash
