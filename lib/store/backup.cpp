#include "store/backup.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>

#include "files.h"
#include "lmdb/file_check.h"
#include "lighthouse/store.h"

namespace lighthouse {
namespace fs = std::filesystem;
namespace {

// A backup that fails leaves nothing behind — and removes nothing it did
// not make: the directory it created, or the files it wrote into the empty
// one it was given (LMDB creates data.mdb with O_EXCL, so once the copy
// succeeded the file is this backup's; lock.mdb is ours if it appeared).
struct Cleanup {
  fs::path dir;
  bool created;
  bool data_ours = false;
  bool lock_ours = false;
  bool armed = true;
  ~Cleanup() {
    if (!armed) return;
    std::error_code ignored;
    if (created) {
      fs::remove_all(dir, ignored);
      return;
    }
    if (data_ours) fs::remove(dir / "data.mdb", ignored);
    if (lock_ours) fs::remove(dir / "lock.mdb", ignored);
  }
};

// Opens the copy read-only and verifies it; returns its events.
std::uint64_t verify_copy(const fs::path& target) {
  Options options;
  options.read_only = true;
  options.create_if_missing = false;
  Store copy = Store::open(target, options);
  const VerifyReport verified = copy.verify({10});
  if (!verified.ok()) {
    const IntegrityProblem& p = verified.problems.front();
    throw Error(ErrorCode::corruption, "the backup in '" + target.string() + "' does not verify: " + p.category + " " +
                                           p.subject + ": " + p.detail);
  }
  copy.close();
  return verified.events_checked;
}

}  // namespace

BackupReport backup_store(const Environment& env, const Options& store_options, const fs::path& given) {
  const auto start = std::chrono::steady_clock::now();
  // Checked and created in normal form: "new/.." is the existing parent.
  const fs::path destination = directory_path(fs::absolute(given));
  check_copy_destination(destination, env.path(), "backup");
  std::error_code ec;
  const bool created = create_directory_for(destination, store_options.file_mode, ec);
  if (ec) throw Error(ErrorCode::io_error, "cannot create '" + destination.string() + "': " + ec.message());
  const fs::path target = fs::canonical(destination, ec);
  if (ec) throw Error(ErrorCode::io_error, "cannot resolve '" + destination.string() + "': " + ec.message());
  Cleanup cleanup{target, created};
  const bool had_lock = fs::exists(target / "lock.mdb", ec);
  {
    auto lock = env.use();
    // LMDB's copy walks the trees trusting every page: the structure is
    // checked first, on a snapshot (a whole structure stays whole under
    // LMDB's own writes; the copy is verified after).
    // (Its snapshot is let go before the copy takes its own.)
    const lmdb::StructureReport structure = env.check_structure(1).structure;
    if (!structure.ok()) {
      throw Error(ErrorCode::corruption, "store '" + env.path().string() +
                                             "' cannot be backed up: the file's structure is damaged (" +
                                             Environment::describe(structure) +
                                             "); run `lighthouse verify`, or copy out what can be read with "
                                             "`lighthouse salvage`");
    }
    env.copy_compacted(target);
  }
  cleanup.data_ours = true;
  cleanup.lock_ours = !had_lock;
  // LMDB creates the copy with 0666 less the umask: give it the mode of the
  // store's own data file.
  struct stat source {};
  if (::stat((env.path() / "data.mdb").c_str(), &source) == 0) {
    fs::permissions(target / "data.mdb", static_cast<fs::perms>(source.st_mode & 0777u), ec);
  }
  sync_path(target / "data.mdb", false);
  sync_path(target, true);
  BackupReport report;
  report.path = (target / "data.mdb").string();
  report.bytes = fs::file_size(target / "data.mdb");
  report.events = verify_copy(target);
  cleanup.armed = false;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace lighthouse
