// Where the memory maps of this process's open stores lie, for the fault
// handler of lighthouse/faults.h: a fixed table the handler can read from a
// signal (atomics, no allocation, no lock).
#pragma once

#include <lmdb.h>

#include <cstddef>
#include <string>

namespace lighthouse::map_regions {

// A slot for the store at `path`; -1 when the table is full (the store then
// goes without the handler's message: a fault in it stays a crash).
int add(const std::string& path) noexcept;
// The map of slot `slot` is now [address, address + size) (null: none).
void update(int slot, const void* address, std::size_t size) noexcept;
// The LMDB environment of slot `slot` (see lmdb::InLmdb).
void attach(int slot, const void* env) noexcept;
void release(int slot) noexcept;

// True once install_store_fault_handler() installed the handler: only then
// are maps located (reading /proc/self/maps costs more than the rest of an
// open).
bool handler_active() noexcept;

// Locates the map of every store open now (the handler was just installed).
void locate_all();

// Where this process maps the file `file` now (from /proc/self/maps, by
// device and inode: LMDB does not say where its map is). False when it is
// not mapped.
bool find_map_of(const std::string& file, const void*& address, std::size_t& size);

// The store whose map holds `address`: copies its path into `path` (at
// most `size` bytes, NUL-terminated). Async-signal-safe.
bool find(const void* address, char* path, std::size_t size) noexcept;
// LMDB's assert callback (mdb_env_set_assert): an assertion LMDB's code
// fails on a store's pages is damage of its file like a fault — with the
// store fault handler installed, the same message and exit; without it,
// LMDB's own message and abort().
void on_lmdb_assert(MDB_env* env, const char* message);

// The store of the LMDB environment `env`, likewise.
bool find_env(const void* env, char* path, std::size_t size) noexcept;

}  // namespace lighthouse::map_regions
