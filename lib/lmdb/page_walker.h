// The walker of the structural check (file_check.h), private to
// lib/lmdb: every tree from the chosen meta page, every page read once
// through a PageSource. page_walker.cpp walks trees, pages and nodes;
// page_walker_dups.cpp the sets of duplicates (DUPSORT sub-pages and
// sub-databases, fixed-size values); page_account.cpp keeps the pages.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lmdb/file_check.h"
#include "lmdb/page_account.h"
#include "lmdb/page_format.h"

namespace lighthouse::lmdb::walk {

// A database record (MDB_db) as the walk needs it.
struct DbRecord {
  std::uint32_t pad = 0;
  std::uint16_t flags = 0, depth = 0;
  std::uint64_t branch = 0, leaf = 0, overflow = 0, entries = 0, root = kNoPage;
};

inline DbRecord decode_db(std::string_view b, std::size_t at) {
  return {le32(b, at + kDbPad),    le16(b, at + kDbFlags),    le16(b, at + kDbDepth),   le64(b, at + kDbBranch),
          le64(b, at + kDbLeaf),   le64(b, at + kDbOverflow), le64(b, at + kDbEntries), le64(b, at + kDbRoot)};
}

// What kind of tree a walk is in: its keys' order, and what its leaves hold.
enum class TreeKind {
  main,        // named database records (and plain pairs)
  free_list,   // 8-byte transaction IDs -> lists of free pages
  plain,       // a named database without duplicates
  dupsort,     // a named database with sorted duplicates
  dup_values,  // the tree of one key's duplicates (the values are its keys)
};

struct Tree {
  std::string name;
  TreeKind kind;
  DbRecord db;
  bool dupfixed = false;       // dupsort: its duplicates are LEAF2 of fixed size
  bool ordered_keys = true;    // false for comparators the check does not know
};

struct Counts {
  std::uint64_t branch = 0, leaf = 0, overflow = 0, entries = 0;
};

// One key bound of a subtree (nothing: open).
using Bound = std::optional<std::string_view>;

class Walker {
 public:
  Walker(const PageSource& source, const WalkOptions& options) : source_(source), options_(options) {}

  // The whole walk; the report.
  StructureReport run();

 private:
  void add(std::uint64_t page, const std::string& db, std::string detail);

  bool claim(std::uint64_t pgno, const Tree& t, const char* what) { return account_->claim(pgno, t.name, what); }

  bool read_page(std::uint64_t pgno, const Tree& t, std::string& out);

  bool less(const Tree& t, std::string_view a, std::string_view b) const;

  // Checks `key` against the previous key of its page and the subtree's bounds.
  void check_order(const Tree& t, std::uint64_t pgno, std::string_view key, std::optional<std::string_view>& previous,
                   const Bound& lo, const Bound& hi);

  void walk(const Tree& t);

  void compare_counts(const Tree& t, const Counts& c);

  void walk_page(const Tree& t, std::uint64_t pgno, unsigned level, const Bound& lo, const Bound& hi, Counts& c);

  // The node at slot `i` of `page` (size `size`): its offset, or nothing
  // when it does not fit (reported).
  std::optional<std::size_t> node_at(const Tree& t, std::uint64_t pgno, std::string_view page, std::size_t size,
                                     std::size_t i);

  void walk_branch(const Tree& t, std::uint64_t pgno, std::string_view page, std::size_t n, unsigned level,
                   const Bound& lo, const Bound& hi, Counts& c);

  // A LEAF2 page or sub-page of `size` bytes: fixed-size keys, packed.
  void walk_leaf2(const Tree& t, std::uint64_t pgno, std::string_view page, std::size_t size, std::size_t n,
                  const Bound& lo, const Bound& hi, Counts& c);

  void walk_leaf(const Tree& t, std::uint64_t pgno, std::string_view page, std::size_t n, const Bound& lo,
                 const Bound& hi, Counts& c);

  // [begin, end) of each node of a page.
  using Spans = std::vector<std::pair<std::size_t, std::size_t>>;
  // Returns true iff no two nodes of the page share a byte (reported).
  bool separate(const Tree& t, std::uint64_t pgno, Spans& spans);

  // One leaf node: what its flags say it holds must be what the tree holds.
  void leaf_node(const Tree& t, std::uint64_t pgno, std::string_view key, std::uint16_t flags, std::string_view data,
                 std::size_t dsize, Counts& c);

  Tree named_tree(std::string_view name, std::string_view record);

  void dup_node(const Tree& t, std::uint64_t pgno, std::uint16_t flags, std::string_view data, std::size_t dsize,
                Counts& c);

  // A sub-page of duplicates inside a node; returns how many values it holds.
  std::size_t sub_page(const Tree& t, std::uint64_t pgno, std::string_view sp);

  // An overflow run named by a node; reads its data into `out` when given.
  bool overflow(const Tree& t, std::string_view data, std::size_t dsize, std::string* out, Counts& c);

  const PageSource& source_;
  const WalkOptions& options_;
  StructureReport report_;
  std::uint32_t psize_ = 0;
  std::uint64_t last_ = 0;
  std::optional<PageAccount> account_;
  std::vector<Tree> named_;
};

}  // namespace lighthouse::lmdb::walk
