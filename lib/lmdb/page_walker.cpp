// The walk of the structural check (file_check.h): trees, pages, nodes,
// overflow runs. The sets of duplicates are in page_walker_dups.cpp.
#include "lmdb/page_walker.h"

#include <algorithm>

namespace lighthouse::lmdb {
namespace walk {

StructureReport Walker::run() {
  std::array<std::string, 2> raw;
  const MetaCheck metas = check_meta_pages(source_, &raw);
  // A pinned snapshot has writers beside it: what was read of the meta
  // pages counts only if they still hold it (or the caller tries again).
  if (options_.txnid && !meta_pages_unchanged(source_, raw)) {
    report_.snapshot_gone = true;
    return std::move(report_);
  }
  for (const auto& p : metas.problems) add(p.page, p.database, p.detail);
  if (!metas.ok()) return std::move(report_);
  const MetaPage* meta = &metas.current();
  if (options_.txnid) {
    meta = metas.metas[0].txnid == *options_.txnid ? &metas.metas[0]
           : metas.metas[1].txnid == *options_.txnid ? &metas.metas[1]
                                                        : nullptr;
    if (meta == nullptr) {
      report_.snapshot_gone = true;
      return std::move(report_);
    }
    if (meta != &metas.current()) {
      std::vector<FileProblem> roots;
      check_meta_roots(*meta, meta == &metas.metas[0] ? 0 : 1, source_.size(), roots);
      for (const auto& p : roots) add(p.page, p.database, p.detail);
      if (!roots.empty()) return std::move(report_);
    }
  }
  psize_ = meta->page_size;
  last_ = meta->last_page;
  report_.txnid = meta->txnid;
  report_.pages = last_ + 1;
  account_.emplace(last_, report_.txnid, report_,
                   [this](std::uint64_t p, const std::string& db, std::string detail) { add(p, db, std::move(detail)); });
  const std::string& page = raw[meta == &metas.metas[0] ? 0 : 1];  // the bytes judged, not a second read
  walk(Tree{"main", TreeKind::main, decode_db(page, kMetaMainDb)});
  for (auto& named : named_) walk(named);
  Tree free{"free list", TreeKind::free_list, decode_db(page, kMetaFreeDb)};
  free.db.flags = 0;  // its record's flags hold the environment's own
  walk(free);
  account_->settle();
  return std::move(report_);
}

void Walker::add(std::uint64_t page, const std::string& db, std::string detail) {
  ++report_.problem_count;
  if (report_.problems.size() < options_.max_problems) report_.problems.push_back({page, db, std::move(detail)});
}

bool Walker::read_page(std::uint64_t pgno, const Tree& t, std::string& out) {
  if (!source_.read(pgno * psize_, psize_, out)) {
    add(pgno, t.name, "page " + std::to_string(pgno) + " is past the end of the file");
    return false;
  }
  if (le64(out, kPageNumber) != pgno) {
    add(pgno, t.name, "page " + std::to_string(pgno) + " says it is page " + std::to_string(le64(out, kPageNumber)));
    return false;
  }
  return true;
}

bool Walker::less(const Tree& t, std::string_view a, std::string_view b) const {
  if (t.kind == TreeKind::free_list && a.size() == 8 && b.size() == 8) return le64(a, 0) < le64(b, 0);
  return a < b;  // mdb_cmp_memn: memcmp, the shorter first on a tie
}

// Checks `key` against the previous key of its page and the subtree's bounds.
void Walker::check_order(const Tree& t, std::uint64_t pgno, std::string_view key, std::optional<std::string_view>& previous,
                 const Bound& lo, const Bound& hi) {
  if (!t.ordered_keys) return;
  if (previous && !less(t, *previous, key)) add(pgno, t.name, "keys out of order in page " + std::to_string(pgno));
  if (lo && less(t, key, *lo)) add(pgno, t.name, "a key of page " + std::to_string(pgno) + " is below its branch's bound");
  if (hi && !less(t, key, *hi)) add(pgno, t.name, "a key of page " + std::to_string(pgno) + " is not below its branch's bound");
  previous = key;
}

void Walker::walk(const Tree& t) {
  Counts counts;
  if (t.db.root == kNoPage) {
    if (t.db.depth != 0 || t.db.entries != 0) add(kNoPage, t.name, "an empty tree with depth or entries");
    return;
  }
  if (t.db.depth < 1 || t.db.depth > kMaxDepth) {
    add(t.db.root, t.name, "tree depth " + std::to_string(t.db.depth) + " is outside 1.." + std::to_string(kMaxDepth));
    return;
  }
  walk_page(t, t.db.root, 1, std::nullopt, std::nullopt, counts);
  compare_counts(t, counts);
}

void Walker::compare_counts(const Tree& t, const Counts& c) {
  const auto differ = [&](const char* what, std::uint64_t recorded, std::uint64_t walked) {
    if (recorded != walked) {
      add(t.db.root, t.name, std::string("records ") + std::to_string(recorded) + " " + what + " but " +
                                 std::to_string(walked) + " were walked");
    }
  };
  differ("branch pages", t.db.branch, c.branch);
  differ("leaf pages", t.db.leaf, c.leaf);
  differ("overflow pages", t.db.overflow, c.overflow);
  differ("entries", t.db.entries, c.entries);
}

void Walker::walk_page(const Tree& t, std::uint64_t pgno, unsigned level, const Bound& lo, const Bound& hi, Counts& c) {
  if (!claim(pgno, t, "tree")) return;
  std::string page;
  if (!read_page(pgno, t, page)) return;
  const std::uint16_t flags = le16(page, kPageFlags);
  const bool leaf2 = flags == (kPageLeaf | kPageLeaf2);
  if (flags != kPageBranch && flags != kPageLeaf && !leaf2) {
    add(pgno, t.name, "page " + std::to_string(pgno) + " has flags " + hex16(flags) + ", not a branch or a leaf");
    return;
  }
  const bool branch = flags == kPageBranch;
  if (branch != (level < t.db.depth)) {
    add(pgno, t.name, "page " + std::to_string(pgno) + " is a " + (branch ? "branch" : "leaf") + " at level " +
                          std::to_string(level) + " of a tree of depth " + std::to_string(t.db.depth));
    return;
  }
  const std::uint16_t lower = le16(page, kPageLower), upper = le16(page, kPageUpper);
  if (lower < kPageHeader || lower > upper || upper > psize_ || (lower & 1) != 0) {
    add(pgno, t.name, "page " + std::to_string(pgno) + " has bounds " + std::to_string(lower) + ".." + std::to_string(upper));
    return;
  }
  const std::size_t n = (lower - kPageHeader) / 2;
  if (n == 0) {
    add(pgno, t.name, "page " + std::to_string(pgno) + " holds no key");
    return;
  }
  if (branch) {
    ++c.branch;
    walk_branch(t, pgno, page, n, level, lo, hi, c);
  } else if (leaf2) {
    ++c.leaf;
    walk_leaf2(t, pgno, page, psize_, n, lo, hi, c);
  } else {
    ++c.leaf;
    walk_leaf(t, pgno, page, n, lo, hi, c);
  }
}

// The node at slot `i` of `page` (size `size`): its offset, or nothing
// when it does not fit (reported).
std::optional<std::size_t> Walker::node_at(const Tree& t, std::uint64_t pgno, std::string_view page, std::size_t size,
                                   std::size_t i) {
  const std::size_t at = le16(page, kPageHeader + 2 * i);
  const std::uint16_t upper = le16(page, kPageUpper);
  if ((at & 1) != 0 || at < upper || at + kNodeHeader > size || at + kNodeHeader + le16(page, at + 6) > size) {
    add(pgno, t.name, "node " + std::to_string(i) + " of page " + std::to_string(pgno) + " at offset " +
                          std::to_string(at) + " does not fit in the page");
    return std::nullopt;
  }
  return at;
}

void Walker::walk_branch(const Tree& t, std::uint64_t pgno, std::string_view page, std::size_t n, unsigned level,
                 const Bound& lo, const Bound& hi, Counts& c) {
  if (n < 2 && t.kind != TreeKind::free_list) add(pgno, t.name, "branch page " + std::to_string(pgno) + " has one child");
  std::vector<std::pair<std::uint64_t, std::string_view>> children;
  std::optional<std::string_view> previous;
  Spans spans;
  for (std::size_t i = 0; i < n; ++i) {
    const auto at = node_at(t, pgno, page, psize_, i);
    if (!at) return;
    const std::uint16_t ksize = le16(page, *at + 6);
    spans.emplace_back(*at, *at + kNodeHeader + ksize);
    const std::string_view key = page.substr(*at + kNodeHeader, ksize);
    if (i == 0 && ksize != 0) add(pgno, t.name, "the first key of branch page " + std::to_string(pgno) + " is not empty");
    if (i > 0) check_order(t, pgno, key, previous, lo, hi);
    const std::uint64_t child = le16(page, *at) | (std::uint64_t{le16(page, *at + 2)} << 16) |
                                (std::uint64_t{le16(page, *at + 4)} << 32);
    children.emplace_back(child, key);
  }
  if (!separate(t, pgno, spans)) return;
  for (std::size_t i = 0; i < children.size(); ++i) {
    const Bound child_lo = i == 0 ? lo : Bound(children[i].second);
    const Bound child_hi = i + 1 < children.size() ? Bound(children[i + 1].second) : hi;
    walk_page(t, children[i].first, level + 1, child_lo, child_hi, c);
  }
}

void Walker::walk_leaf(const Tree& t, std::uint64_t pgno, std::string_view page, std::size_t n, const Bound& lo,
               const Bound& hi, Counts& c) {
  Spans spans;
  for (std::size_t i = 0; i < n; ++i) {  // every node fits, and none overlaps another, before any is followed
    const auto at = node_at(t, pgno, page, psize_, i);
    if (!at) return;
    const std::uint16_t ksize = le16(page, *at + 6), flags = le16(page, *at + 4);
    const std::size_t dsize = le16(page, *at) | (std::size_t{le16(page, *at + 2)} << 16);
    const std::size_t on_page = (flags & kNodeBigData) != 0 ? 8 : dsize;
    if (*at + kNodeHeader + ksize + on_page > psize_) {
      add(pgno, t.name, "the data of node " + std::to_string(i) + " of page " + std::to_string(pgno) + " runs past the page");
      return;
    }
    spans.emplace_back(*at, *at + kNodeHeader + ksize + on_page);
  }
  if (!separate(t, pgno, spans)) return;
  std::optional<std::string_view> previous;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t at = le16(page, kPageHeader + 2 * i);
    const std::uint16_t ksize = le16(page, at + 6), flags = le16(page, at + 4);
    const std::size_t dsize = le16(page, at) | (std::size_t{le16(page, at + 2)} << 16);
    const std::string_view key = page.substr(at + kNodeHeader, ksize);
    check_order(t, pgno, key, previous, lo, hi);
    const std::size_t on_page = (flags & kNodeBigData) != 0 ? 8 : dsize;
    leaf_node(t, pgno, key, flags, page.substr(at + kNodeHeader + ksize, on_page), dsize, c);
  }
}

// Returns true iff no two nodes of the page share a byte (reported).
bool Walker::separate(const Tree& t, std::uint64_t pgno, Spans& spans) {
  std::sort(spans.begin(), spans.end());
  for (std::size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].first < spans[i - 1].second) {
      add(pgno, t.name, "nodes of page " + std::to_string(pgno) + " overlap at offset " + std::to_string(spans[i].first));
      return false;
    }
  }
  return true;
}

// One leaf node: what its flags say it holds must be what the tree holds.
void Walker::leaf_node(const Tree& t, std::uint64_t pgno, std::string_view key, std::uint16_t flags, std::string_view data,
               std::size_t dsize, Counts& c) {
  const auto bad = [&](const char* why) {
    add(pgno, t.name, "a node of page " + std::to_string(pgno) + " " + why + " (flags " + hex16(flags) + ")");
  };
  ++c.entries;
  switch (t.kind) {
    case TreeKind::main:
      if (flags == kNodeSubData) {
        if (dsize != kDbSize) return bad("names a database with a record that is not 48 bytes");
        named_.push_back(named_tree(key, data));
      } else if (flags != 0 && flags != kNodeBigData) {
        bad("holds what the main database cannot");
      }
      if (flags == kNodeBigData) overflow(t, data, dsize, nullptr, c);
      return;
    case TreeKind::free_list: {
      if (key.size() != 8) return bad("has a key that is not a transaction ID");
      if (flags != 0 && flags != kNodeBigData) return bad("holds what the free list cannot");
      std::string list;
      if (flags == kNodeBigData) {
        if (!overflow(t, data, dsize, &list, c)) return;
      } else {
        list.assign(data);
      }
      account_->free_record(pgno, le64(key, 0), list);
      return;
    }
    case TreeKind::plain:
      if (flags == kNodeBigData) {
        overflow(t, data, dsize, nullptr, c);
      } else if (flags != 0) {
        bad("holds duplicates or a database in a database without them");
      }
      return;
    case TreeKind::dupsort:
      dup_node(t, pgno, flags, data, dsize, c);
      return;
    case TreeKind::dup_values:
      if (flags != 0 || dsize != 0) bad("is not a duplicate value");
      return;
  }
}

// An overflow run named by a node; reads its data into `out` when given.
bool Walker::overflow(const Tree& t, std::string_view data, std::size_t dsize, std::string* out, Counts& c) {
  const std::uint64_t first = le64(data, 0);
  if (!claim(first, t, "overflow")) return false;
  std::string page;
  if (!read_page(first, t, page)) return false;
  const std::uint32_t pages = le32(page, kPageCount);
  const std::uint64_t needed = (kPageHeader - 1 + dsize) / psize_ + 1;
  if (le16(page, kPageFlags) != kPageOverflow || pages < needed || first + pages - 1 > last_) {
    add(first, t.name, "overflow page " + std::to_string(first) + " (flags " + hex16(le16(page, kPageFlags)) + ", " +
                           std::to_string(pages) + " pages) cannot hold " + std::to_string(dsize) + " bytes");
    return false;
  }
  for (std::uint64_t p = first + 1; p < first + pages; ++p) {
    if (!claim(p, t, "overflow")) return false;
  }
  c.overflow += pages;
  if (out != nullptr && !source_.read(first * psize_ + kPageHeader, dsize, *out)) {
    add(first, t.name, "overflow page " + std::to_string(first) + " runs past the end of the file");
    return false;
  }
  return true;
}

}  // namespace walk

using walk::Walker;

StructureReport walk_structure(const std::filesystem::path& data_file, const WalkOptions& options) {
  const FdSource source(data_file);
  source.read_ahead();
  return Walker(source, options).run();
}

StructureReport walk_structure(const PageSource& source, const WalkOptions& options) {
  return Walker(source, options).run();
}

StructureReport walk_structure_bytes(std::string_view bytes, const WalkOptions& options) {
  const MemorySource source(bytes);
  return Walker(source, options).run();
}

}  // namespace lighthouse::lmdb
