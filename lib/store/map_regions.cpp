#include "store/map_regions.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "lighthouse/faults.h"
#include "lmdb/lmdb.h"

namespace lighthouse::map_regions {
namespace {

constexpr int kSlots = 64;

unsigned major_of(dev_t dev) { return static_cast<unsigned>(major(dev)); }
unsigned minor_of(dev_t dev) { return static_cast<unsigned>(minor(dev)); }
constexpr std::size_t kPathBytes = 512;

struct Slot {
  std::atomic<bool> used{false};
  std::atomic<std::uintptr_t> begin{0};
  std::atomic<std::size_t> size{0};
  std::atomic<const void*> env{nullptr};
  char path[kPathBytes] = {};
};
Slot slots[kSlots];

}  // namespace

int add(const std::string& path) noexcept {
  for (int i = 0; i < kSlots; ++i) {
    bool expected = false;
    if (!slots[i].used.compare_exchange_strong(expected, true)) continue;
    slots[i].size.store(0);
    const std::size_t n = std::min(path.size(), kPathBytes - 1);
    std::memcpy(slots[i].path, path.data(), n);
    slots[i].path[n] = '\0';
    return i;
  }
  return -1;
}

void update(int slot, const void* address, std::size_t size) noexcept {
  if (slot < 0 || slot >= kSlots) return;
  slots[slot].size.store(0);  // never a moment with the old size and the new address
  slots[slot].begin.store(reinterpret_cast<std::uintptr_t>(address));
  slots[slot].size.store(size);
}

void attach(int slot, const void* env) noexcept {
  if (slot >= 0 && slot < kSlots) slots[slot].env.store(env);
}

void release(int slot) noexcept {
  if (slot < 0 || slot >= kSlots) return;
  slots[slot].size.store(0);
  slots[slot].env.store(nullptr);
  slots[slot].used.store(false);
}

void locate_all() {
  for (int i = 0; i < kSlots; ++i) {
    if (!slots[i].used.load()) continue;
    const void* address = nullptr;
    std::size_t size = 0;
    if (find_map_of(std::string(slots[i].path) + "/data.mdb", address, size)) update(i, address, size);
  }
}

bool find_map_of(const std::string& file, const void*& address, std::size_t& size) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return false;
  std::FILE* maps = std::fopen("/proc/self/maps", "re");
  if (maps == nullptr) return false;
  bool found = false;
  char line[4096];
  while (!found && std::fgets(line, sizeof line, maps) != nullptr) {
    unsigned long long begin = 0, end = 0, offset = 0, inode = 0;
    unsigned major = 0, minor = 0;
    char perms[8] = {};
    if (std::sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &begin, &end, perms, &offset, &major, &minor, &inode) != 7) {
      continue;
    }
    if (inode == st.st_ino && major == major_of(st.st_dev) && minor == minor_of(st.st_dev) && offset == 0) {
      address = reinterpret_cast<const void*>(static_cast<std::uintptr_t>(begin));
      size = static_cast<std::size_t>(end - begin);
      found = true;
    }
  }
  std::fclose(maps);
  return found;
}

namespace {

void copy_path(const Slot& s, char* path, std::size_t size) noexcept {
  if (path == nullptr || size == 0) return;
  std::size_t i = 0;
  for (; i + 1 < size && s.path[i] != '\0'; ++i) path[i] = s.path[i];
  path[i] = '\0';
}

}  // namespace

bool find(const void* address, char* path, std::size_t size) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  for (auto& s : slots) {
    if (!s.used.load()) continue;
    const std::uintptr_t begin = s.begin.load();
    const std::size_t n = s.size.load();
    if (n == 0 || a < begin || a - begin >= n) continue;
    copy_path(s, path, size);
    return true;
  }
  return false;
}

bool find_env(const void* env, char* path, std::size_t size) noexcept {
  if (env == nullptr) return false;
  for (auto& s : slots) {
    if (!s.used.load() || s.env.load() != env) continue;
    copy_path(s, path, size);
    return true;
  }
  return false;
}

}  // namespace lighthouse::map_regions

namespace lighthouse {
namespace {

int fault_exit_code = 5;

}  // namespace

std::atomic<bool> handler_installed{false};

bool map_regions::handler_active() noexcept { return handler_installed.load(); }

namespace {

void write_all(const char* text) noexcept {
  std::size_t n = std::strlen(text);
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, text, n);
    if (w <= 0) return;
    text += w;
    n -= static_cast<std::size_t>(w);
  }
}

void on_fault(int signal, siginfo_t* info, void*) {
  char path[512];
  // A fault the kernel raised (si_code > 0), not a kill(): si_addr is then
  // the address that could not be read.
  const bool raised_by_kernel = info != nullptr && info->si_code > 0;
  // Inside a store's map: a page that cannot be read. Inside LMDB's code
  // on a store (lmdb::InLmdb): a damaged page it trusted, which made it
  // follow a null or wild pointer.
  const char* where = nullptr;
  if (raised_by_kernel && map_regions::find(info->si_addr, path, sizeof path)) {
    where = " inside the store's map";
  } else if (raised_by_kernel && map_regions::find_env(lmdb::env_in_use(), path, sizeof path)) {
    where = " in LMDB, reading the store";
  }
  if (where != nullptr) {
    write_all("lighthouse: store '");
    write_all(path);
    write_all("' is damaged: a page of its file could not be read (");
    write_all(signal == SIGBUS ? "SIGBUS" : "SIGSEGV");
    write_all(where);
    write_all("); run `lighthouse verify ");
    write_all(path);
    write_all("`\n");
    ::_exit(fault_exit_code);
  }
  // Not the store's: a bug stays a crash, with the default action. A fault
  // comes back when the instruction runs again (its core shows where); a
  // signal another process sent is raised again.
  ::signal(signal, SIG_DFL);
  if (!raised_by_kernel) ::raise(signal);
}

}  // namespace

void map_regions::on_lmdb_assert(MDB_env* env, const char* message) {
  char path[512];
  if (!handler_installed.load() || !map_regions::find_env(env, path, sizeof path)) return;  // LMDB aborts
  write_all("lighthouse: store '");
  write_all(path);
  write_all("' is damaged: LMDB's own check of a page failed (");
  write_all(message);
  write_all("); run `lighthouse verify ");
  write_all(path);
  write_all("`\n");
  ::_exit(fault_exit_code);
}

bool store_map_fault(const void* address, char* path, std::size_t path_size) noexcept {
  return map_regions::find(address, path, path_size);
}

bool install_store_fault_handler(int exit_code) noexcept {
  fault_exit_code = exit_code;
  struct sigaction action {};
  action.sa_sigaction = on_fault;
  action.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&action.sa_mask);
  const bool installed = ::sigaction(SIGSEGV, &action, nullptr) == 0 && ::sigaction(SIGBUS, &action, nullptr) == 0;
  handler_installed.store(installed);
  if (installed) {
    try {
      map_regions::locate_all();  // the stores opened before
    } catch (...) {
      // Out of memory reading /proc/self/maps: those stores go without the message.
    }
  }
  return installed;
}

}  // namespace lighthouse
