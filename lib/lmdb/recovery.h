// Reading what can still be read of a damaged LMDB file, straight from its
// pages and never through LMDB (which trusts its pages and may crash on a
// damaged one): for salvage. Every read is bounds-checked; damaged pages
// are counted and skipped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace lighthouse::lmdb {

struct RecoveredPair {
  std::string key, value;
  bool reachable = true;  // found by following the tree (not by scanning pages)
};

struct Recovery {
  std::vector<RecoveredPair> pairs;
  std::uint64_t unreadable_pages = 0;  // reached from the tree but damaged
  bool tree_found = false;             // the database's record was found in the main database
  bool scanned = false;                // every page of the file was scanned for more
};

// When to search every page of the file, beyond the tree, for more pairs.
enum class ScanPages { never, when_tree_damaged, always };

// The pairs of the named database `name` of plain (not DUPSORT) leaves:
// first by following its tree from the meta page that reads best; then, as
// `scan` says (when_tree_damaged: when the tree cannot be followed whole or
// its record is not found), also every leaf page of the file the walk did
// not reach whose nodes hold pairs with keys of `key_size` bytes (0: any) —
// old copies in free pages among them — as candidates a caller must verify.
// Errors: io_error.
Recovery recover_database(const std::filesystem::path& data_file, const std::string& name, ScanPages scan,
                          std::size_t key_size = 0);

// The same over any page source (the fuzzer's entry point).
class PageSource;
Recovery recover_database(const PageSource& source, const std::string& name, ScanPages scan,
                          std::size_t key_size = 0);

}  // namespace lighthouse::lmdb
