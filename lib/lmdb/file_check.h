// The structural check of an LMDB data file, independent of LMDB: it reads
// data.mdb with pread and checks what LMDB assumes of its pages before it
// trusts them (LMDB has no page checksums: a damaged page reaches its code,
// which may then crash or reuse live pages). The layout is LMDB 0.9's
// (mdb.c of the installed 0.9.24): docs/formats.md, "The LMDB file".
//
// Thread safety: each call is independent; the file may be written
// meanwhile by LMDB (pages reachable from a snapshot a reader pins are
// never rewritten while it holds them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace lighthouse::lmdb {

inline constexpr std::uint64_t kNoPage = ~std::uint64_t{0};

// One of LMDB's two meta pages, decoded.
struct MetaPage {
  std::uint32_t page_size = 0;
  std::uint64_t map_size = 0;
  std::uint64_t last_page = 0;
  std::uint64_t txnid = 0;
  std::uint64_t free_root = kNoPage, main_root = kNoPage;
};

struct FileProblem {
  std::uint64_t page = kNoPage;  // the page it is about (kNoPage: the file as a whole)
  std::string database;          // "meta", "free list", "main", or a named database
  std::string detail;
};

// Both meta pages, checked: magic, version, page number, flags, page size,
// last page, roots inside the file, transaction IDs of the right parity.
struct MetaCheck {
  MetaPage metas[2];
  std::vector<FileProblem> problems;
  bool ok() const noexcept { return problems.empty(); }
  // The meta LMDB would use: the larger transaction ID (ties: page 0).
  const MetaPage& current() const noexcept { return metas[metas[0].txnid < metas[1].txnid ? 1 : 0]; }
};
// Errors: none thrown for damage (it is reported); io_error when the file
// cannot be read at all.
MetaCheck check_meta_pages(const std::filesystem::path& data_file);

struct WalkOptions {
  // Walk from the meta of this transaction (a read snapshot's mdb_txn_id);
  // nothing: the current meta. A meta that no longer holds it is a problem
  // the caller resolves by trying again with a new snapshot.
  std::optional<std::uint64_t> txnid;
  std::size_t max_problems = 1000;
};

struct StructureReport {
  std::uint64_t txnid = 0;
  std::uint64_t pages = 0;          // pages 0..last_page
  std::uint64_t tree_pages = 0;     // reachable from a database (overflow runs counted in full)
  std::uint64_t free_pages = 0;     // listed in the free list
  std::uint64_t leaked_pages = 0;   // in neither (a warning, not damage)
  std::uint64_t problem_count = 0;
  std::vector<FileProblem> problems;  // the first WalkOptions::max_problems
  bool snapshot_gone = false;         // no meta holds WalkOptions::txnid any more
  bool ok() const noexcept { return problem_count == 0 && !snapshot_gone; }
};

// Walks every page reachable from the meta's main, named and free
// databases: page numbers, flags, lower/upper bounds, node offsets and
// sizes inside the page, keys in order (and within their parent's bounds),
// DUPSORT sub-pages and sub-databases, overflow runs inside the file,
// branch children inside the last page, tree depths and counters; no page
// reachable twice; free-list records well formed and disjoint from every
// reachable page; every page accounted for. Errors: io_error.
StructureReport walk_structure(const std::filesystem::path& data_file, const WalkOptions& options = {});

// The same walk over the bytes of a data file held in memory (the fuzzer's
// entry point; `bytes` is the whole file).
StructureReport walk_structure_bytes(std::string_view bytes, const WalkOptions& options = {});

}  // namespace lighthouse::lmdb
