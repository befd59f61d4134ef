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

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fault_reader STORE shrink|null\n");
    return 2;
  }
  ::dup2(STDOUT_FILENO, STDERR_FILENO);
  const std::string mode = argv[2];
  if (!lighthouse::install_store_fault_handler()) return 4;
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
  std::filesystem::resize_file(std::filesystem::path(argv[1]) / "data.mdb", 2 * 4096);
  auto cursor = store.query({});
  std::size_t read = 0;
  while (cursor.next()) ++read;
  std::printf("no fault: %zu events read\n", read);
  return 3;
}
