// salvage(): a new store from the event records of a damaged one that can
// still be read and verified (see Store::salvage).
#pragma once

#include <filesystem>

#include "lighthouse/integrity.h"

namespace lighthouse {

SalvageReport salvage_store(const std::filesystem::path& damaged, const std::filesystem::path& destination);

}  // namespace lighthouse
