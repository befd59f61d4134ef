// The per-process registry of open stores: LMDB forbids opening one
// environment twice in a process (closing either would drop the other's
// locks), so every open of a path shares one Store::Impl.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>

#include "store/store_impl.h"

namespace lighthouse::registry {

// Returns the open store for `canonical_path`, or creates one with `make`
// while holding the registry lock. Waits for a store being closed to finish
// closing first.
std::shared_ptr<Store::Impl> acquire(const std::filesystem::path& canonical_path,
                                     const std::function<std::shared_ptr<Store::Impl>()>& make);

// Returns true iff this process has the store at `canonical_path` open.
bool is_open(const std::filesystem::path& canonical_path);

// Runs `close` under the registry lock and forgets `impl`'s entry.
void release(const std::filesystem::path& canonical_path, const Store::Impl* impl,
             const std::function<void()>& close) noexcept;

}  // namespace lighthouse::registry
