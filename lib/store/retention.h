// Retention: dropping archived events (the store's side of
// truncate_before(), whose archive checks are lib/archive/truncation.cpp),
// and compact().
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "lighthouse/store.h"
#include "store/write_path.h"

namespace lighthouse {

// Drops the events from the base to `to_sequence` and their index entries
// in one write transaction (an exclusive task), and records the new base:
// first sequence, chain anchor, `archive`.
void drop_events(WritePath& writer, const Databases& dbs, std::uint64_t to_sequence, const std::string& archive);

// LMDB never shrinks its file: writes a compacted copy and swaps it in.
// REQUIRES: no process has the store open (Error(already_open) otherwise).
// Errors: already_open, not_found, io_error.
CompactReport compact_store(const std::filesystem::path& path);

// Throws Error(already_open) naming `task` iff a process (this one or
// another) has the store at `canonical` open.
void check_closed(const std::filesystem::path& canonical, const char* task);

// The canonical path of the store at `path`, which no process has open.
// Errors: not_found (no store), io_error, already_open (naming `task`).
std::filesystem::path closed_store(const std::filesystem::path& path, const char* task);

}  // namespace lighthouse
