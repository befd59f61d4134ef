#include "store/registry.h"

#include <condition_variable>
#include <map>
#include <mutex>

namespace lighthouse::registry {
namespace {

struct Entry {
  std::weak_ptr<Store::Impl> impl;
  const Store::Impl* raw = nullptr;
};

std::mutex& mutex() {
  static std::mutex m;
  return m;
}
std::condition_variable& closed() {
  static std::condition_variable cv;
  return cv;
}
std::map<std::filesystem::path, Entry>& entries() {
  static std::map<std::filesystem::path, Entry> map;
  return map;
}

}  // namespace

std::shared_ptr<Store::Impl> acquire(const std::filesystem::path& canonical_path,
                                     const std::function<std::shared_ptr<Store::Impl>()>& make) {
  std::unique_lock lock(mutex());
  for (;;) {
    auto it = entries().find(canonical_path);
    if (it == entries().end()) break;
    if (auto impl = it->second.impl.lock()) return impl;
    // The last handle is going away: its destructor is closing the
    // environment and will erase the entry.
    closed().wait(lock);
  }
  auto impl = make();
  entries()[canonical_path] = Entry{impl, impl.get()};
  return impl;
}

bool is_open(const std::filesystem::path& canonical_path) {
  std::lock_guard lock(mutex());
  return entries().count(canonical_path) != 0;
}

void release(const std::filesystem::path& canonical_path, const Store::Impl* impl,
             const std::function<void()>& close) noexcept {
  std::lock_guard lock(mutex());
  close();
  auto it = entries().find(canonical_path);
  if (it != entries().end() && it->second.raw == impl) entries().erase(it);
  closed().notify_all();
}

}  // namespace lighthouse::registry
