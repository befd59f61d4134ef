// backup(): a consistent, compacted, verified copy of a store in use.
#pragma once

#include <filesystem>

#include "lighthouse/integrity.h"
#include "lighthouse/options.h"
#include "store/environment.h"

namespace lighthouse {

// LMDB's compacting copy of one snapshot of `env` into `destination` (a new
// or empty directory, not inside the store), synced and verified. A backup
// that fails leaves nothing behind and removes nothing it did not make.
// Errors: invalid_argument, corruption (the copy does not verify), closed,
// io_error.
BackupReport backup_store(const Environment& env, const Options& store_options, const std::filesystem::path& destination);

}  // namespace lighthouse
