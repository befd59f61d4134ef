// Damaged store files and the signals they raise. LMDB reads a store
// through a memory map and trusts its pages: a damaged page can make it
// follow a null or wild pointer (SIGSEGV), and a file shorter than its
// pages say raises SIGBUS. Lighthouse checks what it can before LMDB reads (the meta
// pages on every open, the whole structure in verify(), backup() and
// compact(), and on open with Options::check_structure_on_open), but a
// program that reads a store that may be damaged can turn a fault inside a
// store's map into a clean exit instead of a crash:
//
//   int main() {
//     lighthouse::install_store_fault_handler();  // exit code 5, a message on stderr
//     ...
//   }
//
// or, in a handler of its own, ask store_map_fault(info->si_addr, ...) and
// decide. The `lighthouse` tool installs the handler at start.
#pragma once

#include <cstddef>

#include "lighthouse/export.h"

namespace lighthouse {

// Returns true iff `address` lies inside the memory map of a store this
// process has open, and copies that store's path (NUL-terminated, cut to
// `path_size` bytes) into `path` when given. Async-signal-safe: callable
// from a SIGSEGV or SIGBUS handler.
LIGHTHOUSE_API bool store_map_fault(const void* address, char* path, std::size_t path_size) noexcept;

// Installs handlers for SIGSEGV and SIGBUS: a fault the kernel raises at
// an address inside a store's map, or inside LMDB's code while it reads or
// writes a store's pages for Lighthouse, writes "lighthouse: store 'PATH'
// is damaged: ... run `lighthouse verify PATH`" to stderr and ends the
// process with `exit_code` (_exit: no destructors run, nothing more is
// written to the store). An assertion of LMDB's own that fails on a
// store's pages (LMDB would abort()) ends the same way. Any other fault —
// in the program's own code, or a signal sent with kill() — takes the
// default action again (a bug stays a crash, with its core). Returns false
// when the handlers cannot be installed. (It replaces the program's own
// handlers of both signals.)
LIGHTHOUSE_API bool install_store_fault_handler(int exit_code = 5) noexcept;

}  // namespace lighthouse
