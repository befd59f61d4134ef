// fault_reader STORE MODE — a host program of the store fault handler
// (lighthouse/faults.h), for its tests. stderr goes to stdout.
//   shrink  opens the store, installs the handler, shrinks data.mdb to its
//           two meta pages under the open map and reads every event: the
//           SIGBUS inside the store's map must end the process with exit
//           code 5 and the handler's message.
//   null    installs the handler and reads a page mapped PROT_NONE: a fault
//           outside any store's map must stay a crash (SIGSEGV).
// Exit code 3 when no fault came.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "lighthouse/lighthouse.h"
#include "lmdb/lmdb.h"
#include "store/map_regions.h"
#include "store/schema.h"
#include "store/store_impl.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fault_reader STORE shrink|shrink-late|locate-late|null\n");
    return 2;
  }
  ::dup2(STDOUT_FILENO, STDERR_FILENO);
  const std::string mode = argv[2];
  // shrink-late, locate-late: the handler is installed after the store was
  // opened (it must locate the maps of the stores already open).
  const bool late = mode == "shrink-late" || mode == "locate-late";
  if (!late && !lighthouse::install_store_fault_handler()) return 4;
  if (mode == "locate-late") {
    // Where a value of the store's map lies: unknown before the handler,
    // the store's once it is installed.
    lighthouse::Store store = lighthouse::Store::open(argv[1]);
    auto& impl = lighthouse::StoreAccess::impl(store);
    auto read = impl.env().begin_read();
    std::string_view value;
    if (!lighthouse::lmdb::get(read->get(), impl.dbs().meta, lighthouse::schema::meta::kFormatVersion, value)) return 4;
    char path[512];
    const bool before = lighthouse::map_regions::find(value.data(), path, sizeof path);
    if (!lighthouse::install_store_fault_handler()) return 4;
    const bool after = lighthouse::map_regions::find(value.data(), path, sizeof path);
    std::printf("before %d after %d %s\n", before, after, after ? path : "");
    return 0;
  }
  if (mode == "null") {
    // A page no one may read (not a null pointer: UBSan would stop that
    // first), outside every store's map.
    void* page = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return 4;
    return *static_cast<volatile int*>(page);
  }
  lighthouse::Options options;
  options.read_only = true;
  lighthouse::Store store = lighthouse::Store::open(argv[1], options);
  if (mode == "shrink-late" && !lighthouse::install_store_fault_handler()) return 4;
  std::filesystem::resize_file(std::filesystem::path(argv[1]) / "data.mdb", 2 * 4096);
  auto cursor = store.query({});
  std::size_t read = 0;
  while (cursor.next()) ++read;
  std::printf("no fault: %zu events read\n", read);
  return 3;
}
