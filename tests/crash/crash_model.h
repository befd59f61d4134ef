// What a power loss can leave on disk, built from a recorder log
// (tests/crash/recorder.c) in the manner of ALICE (OSDI'14) and CrashMonkey
// (OSDI'18). The model of the file system:
//  * A file's data is in blocks (4096 or 512 bytes). A write makes a new
//    version of each block it touches (the page cache's content after it).
//    Until the file is synced (fsync, fdatasync), a block may reach the disk
//    in any of the versions written since its last durable one — or not at
//    all — independently of every other block: writes reach the disk in any
//    order, and a page written in sectors may be torn. A write through an
//    O_DSYNC descriptor is durable when it returns.
//  * A file's size grows with the blocks that reached the disk.
//  * Creating, renaming and removing names is journaled in order: a crash
//    keeps a prefix of the changes made since they were last made durable.
//    An fsync of a directory makes every change of a name in it durable,
//    and with it every change before (the journal is in order).
// A crash state is the directory as it would be found after the power came
// back, at one point of the log, for one choice of what reached the disk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace lighthouse::crash {

enum class OpKind : std::uint8_t {
  write = 1, dsync_write, truncate, fallocate, sync, create, mkdir, rename, unlink, rmdir, mark
};

struct Op {
  OpKind kind;
  std::string path, path2;  // path2: a rename's new name
  std::uint64_t offset = 0, length = 0;
  std::string data;  // a write's bytes, a mark's text
};

// Reads a recorder log. Throws std::runtime_error when it is malformed.
std::vector<Op> read_log(const std::filesystem::path& log);

// The starting state: every file and directory below the recorded
// directory, durable.
struct Snapshot {
  std::map<std::string, std::string> files;  // relative path -> content
  std::set<std::string> dirs;                 // relative paths ("" is the root)
};
Snapshot take_snapshot(const std::filesystem::path& dir);

// One choice of what reached the disk at `point` (ops[0..point) done).
struct CrashState {
  std::size_t point = 0;
  std::size_t block = 4096;
  enum class Writes { none, all, random } writes = Writes::none;  // of the blocks not yet durable
  std::uint64_t seed = 0;  // for Writes::random (and the namespace prefix)
  std::string describe() const;
};

class Model {
 public:
  Model(Snapshot start, std::vector<Op> ops) : start_(std::move(start)), ops_(std::move(ops)) {}
  const std::vector<Op>& ops() const noexcept { return ops_; }
  // Writes the state into `dir` (emptied first).
  void materialize(const CrashState& state, const std::filesystem::path& dir) const;
  // The indexes of the ops after which everything recorded so far of a
  // file or directory is durable (its syncs), and of every op.
  std::vector<std::size_t> sync_points() const;

 private:
  Snapshot start_;
  std::vector<Op> ops_;
};

}  // namespace lighthouse::crash
