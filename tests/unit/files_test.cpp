// Files: owner-only modes by default (configurable), and no link followed
// out of a store or archive directory that Lighthouse writes.
#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <fstream>

#include "lighthouse/lighthouse.h"
#include "support/events.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using namespace lighthouse::testing;
namespace fs = std::filesystem;

namespace {

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 0777u;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// A umask for the test's lifetime (0: the modes must come from Lighthouse).
struct Umask {
  explicit Umask(mode_t mask) : old(::umask(mask)) {}
  ~Umask() { ::umask(old); }
  mode_t old;
};
struct NoUmask : Umask {
  NoUmask() : Umask(0) {}
};

// Exports `store` with `file_mode` and checks the archive's modes.
void check_export_modes(Store& store, const fs::path& archive, unsigned file_mode, unsigned expected_dir,
                        unsigned expected_file) {
  ExportOptions e;
  e.file_mode = file_mode;
  export_archive(store, archive, e);
  CHECK(mode_of(archive) == expected_dir);
  for (const auto& entry : fs::directory_iterator(archive)) CHECK(mode_of(entry.path()) == expected_file);
}

}  // namespace

TEST_CASE("a new store, its backup and its archive are owner-only by default", "[files]") {
  NoUmask no_umask;
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append(event("E"));
  CHECK(mode_of(dir / "store") == 0700);
  CHECK(mode_of(dir / "store" / "data.mdb") == 0600);
  CHECK(mode_of(dir / "store" / "lock.mdb") == 0600);

  store.backup(dir / "copy");
  CHECK(mode_of(dir / "copy") == 0700);
  CHECK(mode_of(dir / "copy" / "data.mdb") == 0600);

  check_export_modes(store, dir / "archive", ExportOptions{}.file_mode, 0700, 0600);
}

TEST_CASE("directories take the umask as the files in them do", "[files]") {
  Umask umask(022);
  TempDir dir;
  Options o;
  o.file_mode = 0666;  // the umask makes it 0644, and the directories 0755
  Store store = Store::open(dir / "store", o);
  store.append(event("E"));
  CHECK(mode_of(dir / "store") == 0755);
  CHECK(mode_of(dir / "store" / "data.mdb") == 0644);
  store.backup(dir / "copy");
  CHECK(mode_of(dir / "copy") == 0755);
  CHECK(mode_of(dir / "copy" / "data.mdb") == 0644);
  check_export_modes(store, dir / "archive", 0666, 0755, 0644);
}

TEST_CASE("compact keeps the data file's mode", "[files]") {
  NoUmask no_umask;  // LMDB would create its copy 0666
  TempDir dir;
  for (unsigned mode : {0600u, 0640u}) {
    INFO(mode);
    const fs::path path = dir / ("store" + std::to_string(mode));
    {
      Options o;
      o.file_mode = mode;
      Store store = Store::open(path, o);
      store.append(event("E"));
    }
    Store::compact(path);
    CHECK(mode_of(path / "data.mdb") == mode);
    CHECK_FALSE(fs::exists(path / ".compact"));
    CHECK(Store::open(path).stats().event_count == 1);
  }
}

TEST_CASE("file modes are configurable", "[files]") {
  NoUmask no_umask;
  TempDir dir;
  Options o;
  o.file_mode = 0640;
  Store store = Store::open(dir / "store", o);
  store.append(event("E"));
  CHECK(mode_of(dir / "store") == 0750);
  CHECK(mode_of(dir / "store" / "data.mdb") == 0640);
  check_export_modes(store, dir / "archive", 0644, 0755, 0644);
}

TEST_CASE("a store whose data or lock file is a symbolic link is refused, the target untouched", "[files]") {
  TempDir dir;
  { Store::open(dir / "real").append(event("E")); }
  const std::string victim_bytes = "precious\n";
  {
    std::ofstream(dir / "victim") << victim_bytes;
  }
  for (const char* name : {"data.mdb", "lock.mdb"}) {
    fs::create_directories(dir / name);
    fs::create_symlink(dir / "victim", dir / name / name);
    auto code = error_code_of([&] { Store::open(dir / name); });
    CHECK(code == ErrorCode::invalid_argument);
    CHECK_THROWS_WITH(Store::open(dir / name), Catch::Contains("symbolic link"));
  }
  // A dangling link is not followed to create its target either.
  fs::create_directories(dir / "dangling");
  fs::create_symlink(dir / "nowhere", dir / "dangling" / "data.mdb");
  CHECK(error_code_of([&] { Store::open(dir / "dangling"); }) == ErrorCode::invalid_argument);
  CHECK_FALSE(fs::exists(dir / "nowhere"));
  CHECK(read_all(dir / "victim") == victim_bytes);
}

TEST_CASE("export never writes through a link planted in the archive directory", "[files]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  for (int i = 0; i < 10; ++i) store.append(event("E"));
  {
    std::ofstream(dir / "victim") << "precious\n";
  }
  fs::create_directories(dir / "archive");
  fs::create_symlink(dir / "victim", dir / "archive" / ".tmp-manifest.json");
  fs::create_symlink(dir / "victim", dir / "archive" / ".tmp-events-00000000000000000001-00000000000000000001.msgpack.gz");
  auto report = export_archive(store, dir / "archive");
  CHECK(report.events == 10);
  CHECK(read_all(dir / "victim") == "precious\n");
  CHECK(verify_archive(dir / "archive").ok());
  for (const auto& entry : fs::directory_iterator(dir / "archive")) CHECK_FALSE(fs::is_symlink(entry.symlink_status()));
}

TEST_CASE("a path with a trailing slash or '..' is created and checked in its normal form", "[files]") {
  NoUmask no_umask;
  TempDir dir;
  Store store = Store::open((dir / "store").string() + "/");
  store.append(event("E"));
  CHECK(mode_of(dir / "store") == 0700);
  store.backup((dir / "copy").string() + "/");
  CHECK(mode_of(dir / "copy") == 0700);
  // "new/.." is the existing, non-empty parent: refused, and nothing of it removed.
  fs::create_directory(dir / "other");
  { std::ofstream(dir / "other" / "data.mdb") << "someone else's"; }
  CHECK(error_code_of([&] { store.backup(dir / "other" / "new" / ".."); }) == ErrorCode::invalid_argument);
  CHECK(read_all(dir / "other" / "data.mdb") == "someone else's");
}
