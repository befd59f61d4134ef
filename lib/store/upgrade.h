// upgrade(): a store of an older format rewritten in the current one (see
// Store::upgrade).
#pragma once

#include <filesystem>

#include "lighthouse/store.h"

namespace lighthouse {

UpgradeReport upgrade_store(const std::filesystem::path& path);

}  // namespace lighthouse
