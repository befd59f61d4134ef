// The walk of the structural check (file_check.h): every tree from the
// chosen meta page, with every page read once through a PageSource.
#include <algorithm>
#include <map>
#include <optional>
#include <vector>

#include "lmdb/file_check.h"
#include "lmdb/page_format.h"

namespace lighthouse::lmdb {
namespace {

// A database record (MDB_db) as the walk needs it.
struct DbRecord {
  std::uint32_t pad = 0;
  std::uint16_t flags = 0, depth = 0;
  std::uint64_t branch = 0, leaf = 0, overflow = 0, entries = 0, root = kNoPage;
};

DbRecord decode_db(std::string_view b, std::size_t at) {
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

  StructureReport run() {
    const MetaCheck metas = check_meta_pages(source_);
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
    state_.assign(static_cast<std::size_t>(std::min<std::uint64_t>(last_ + 1, 1ull << 40)), kNone);
    std::string page;
    source_.read(meta == &metas.metas[0] ? 0 : psize_, kMetaBytes, page);
    walk(Tree{"main", TreeKind::main, decode_db(page, kMetaMainDb)});
    for (auto& named : named_) walk(named);
    Tree free{"free list", TreeKind::free_list, decode_db(page, kMetaFreeDb)};
    free.db.flags = 0;  // its record's flags hold the environment's own
    walk(free);
    mark_free();
    account();
    return std::move(report_);
  }

 private:
  enum State : std::uint8_t { kNone, kTree, kFree };

  void add(std::uint64_t page, const std::string& db, std::string detail) {
    ++report_.problem_count;
    if (report_.problems.size() < options_.max_problems) report_.problems.push_back({page, db, std::move(detail)});
  }

  // Takes `pgno` for a tree; false when it cannot be (reported).
  bool claim(std::uint64_t pgno, const Tree& t, const char* what) {
    if (pgno < 2 || pgno > last_) {
      add(pgno, t.name, std::string(what) + " page " + std::to_string(pgno) + " is outside pages 2.." + std::to_string(last_));
      return false;
    }
    if (state_[pgno] != kNone) {
      add(pgno, t.name, std::string(what) + " page " + std::to_string(pgno) + " is reachable twice");
      return false;
    }
    state_[pgno] = kTree;
    ++report_.tree_pages;
    return true;
  }

  bool read_page(std::uint64_t pgno, const Tree& t, std::string& out) {
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

  bool less(const Tree& t, std::string_view a, std::string_view b) const {
    if (t.kind == TreeKind::free_list && a.size() == 8 && b.size() == 8) return le64(a, 0) < le64(b, 0);
    return a < b;  // mdb_cmp_memn: memcmp, the shorter first on a tie
  }

  // Checks `key` against the previous key of its page and the subtree's bounds.
  void check_order(const Tree& t, std::uint64_t pgno, std::string_view key, std::optional<std::string_view>& previous,
                   const Bound& lo, const Bound& hi) {
    if (!t.ordered_keys) return;
    if (previous && !less(t, *previous, key)) add(pgno, t.name, "keys out of order in page " + std::to_string(pgno));
    if (lo && less(t, key, *lo)) add(pgno, t.name, "a key of page " + std::to_string(pgno) + " is below its branch's bound");
    if (hi && !less(t, key, *hi)) add(pgno, t.name, "a key of page " + std::to_string(pgno) + " is not below its branch's bound");
    previous = key;
  }

  void walk(const Tree& t) {
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

  void compare_counts(const Tree& t, const Counts& c) {
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

  void walk_page(const Tree& t, std::uint64_t pgno, unsigned level, const Bound& lo, const Bound& hi, Counts& c) {
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
  std::optional<std::size_t> node_at(const Tree& t, std::uint64_t pgno, std::string_view page, std::size_t size,
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

  void walk_branch(const Tree& t, std::uint64_t pgno, std::string_view page, std::size_t n, unsigned level,
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

  // A LEAF2 page or sub-page of `size` bytes: fixed-size keys, packed.
  void walk_leaf2(const Tree& t, std::uint64_t pgno, std::string_view page, std::size_t size, std::size_t n,
                  const Bound& lo, const Bound& hi, Counts& c) {
    const bool sub = size != psize_;
    const std::size_t ks = sub ? le16(page, kPagePad) : t.db.pad;
    if (t.kind != TreeKind::dup_values && !sub) {
      add(pgno, t.name, "page " + std::to_string(pgno) + " is a fixed-size leaf outside a set of duplicates");
      return;
    }
    const std::size_t free_bytes = static_cast<std::size_t>(le16(page, kPageUpper) - le16(page, kPageLower));
    if (ks == 0 || kPageHeader + n * ks > size || free_bytes != size - kPageHeader - n * ks ||
        (!sub && le16(page, kPagePad) != ks)) {
      add(pgno, t.name, "fixed-size keys of page " + std::to_string(pgno) + " do not fit their bounds");
      return;
    }
    std::optional<std::string_view> previous;
    for (std::size_t i = 0; i < n; ++i) check_order(t, pgno, page.substr(kPageHeader + i * ks, ks), previous, lo, hi);
    c.entries += n;
  }

  void walk_leaf(const Tree& t, std::uint64_t pgno, std::string_view page, std::size_t n, const Bound& lo,
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

  // [begin, end) of each node of a page.
  using Spans = std::vector<std::pair<std::size_t, std::size_t>>;
  // Returns true iff no two nodes of the page share a byte (reported).
  bool separate(const Tree& t, std::uint64_t pgno, Spans& spans) {
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
  void leaf_node(const Tree& t, std::uint64_t pgno, std::string_view key, std::uint16_t flags, std::string_view data,
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
        free_record(pgno, le64(key, 0), list);
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

  Tree named_tree(std::string_view name, std::string_view record) {
    Tree t{std::string(name), TreeKind::plain, decode_db(record, 0)};
    const std::uint16_t f = t.db.flags;
    if ((f & kDbDupSort) != 0) t.kind = TreeKind::dupsort;
    t.dupfixed = (f & kDbDupFixed) != 0;
    t.ordered_keys = (f & (kDbReverseKey | kDbIntegerKey)) == 0 && (f & (kDbIntegerDup | kDbReverseDup)) == 0;
    return t;
  }

  void dup_node(const Tree& t, std::uint64_t pgno, std::uint16_t flags, std::string_view data, std::size_t dsize,
                Counts& c) {
    if (flags == 0) return;  // a key with one value
    if (flags == kNodeDupData) {
      c.entries += sub_page(t, pgno, data) - 1;
      return;
    }
    if (flags == (kNodeDupData | kNodeSubData) && dsize == kDbSize) {
      Tree values{t.name + " (duplicates)", TreeKind::dup_values, decode_db(data, 0)};
      values.ordered_keys = t.ordered_keys;
      if (values.db.entries == 0 || values.db.root == kNoPage) {
        add(pgno, t.name, "a node of page " + std::to_string(pgno) + " names an empty set of duplicates");
        return;
      }
      c.entries += values.db.entries - 1;
      walk(values);
      return;
    }
    add(pgno, t.name, "a node of page " + std::to_string(pgno) + " has flags " + hex16(flags) + " in a database of duplicates");
  }

  // A sub-page of duplicates inside a node; returns how many values it holds.
  std::size_t sub_page(const Tree& t, std::uint64_t pgno, std::string_view sp) {
    const auto bad = [&](const std::string& why) {
      add(pgno, t.name, "a set of duplicates in page " + std::to_string(pgno) + " " + why);
      return std::size_t{1};
    };
    if (sp.size() < kPageHeader) return bad("is shorter than a page header");
    const std::uint16_t flags = le16(sp, kPageFlags) & ~kPageDirty;
    const bool leaf2 = flags == (kPageLeaf | kPageSub | kPageLeaf2);
    if (flags != (kPageLeaf | kPageSub) && !leaf2) return bad("has flags " + hex16(le16(sp, kPageFlags)));
    const std::uint16_t lower = le16(sp, kPageLower), upper = le16(sp, kPageUpper);
    if (lower < kPageHeader || lower > upper || upper > sp.size() || (lower & 1) != 0) return bad("has bad bounds");
    const std::size_t n = (lower - kPageHeader) / 2;
    if (n == 0) return bad("holds no value");
    Tree values{t.name, TreeKind::dup_values, {}};
    values.ordered_keys = t.ordered_keys;
    Counts ignored;
    if (leaf2) {
      walk_leaf2(values, pgno, sp, sp.size(), n, std::nullopt, std::nullopt, ignored);
      return n;
    }
    std::optional<std::string_view> previous;
    for (std::size_t i = 0; i < n; ++i) {
      const auto at = node_at(values, pgno, sp, sp.size(), i);
      if (!at) return n;
      if (le16(sp, *at) != 0 || le16(sp, *at + 2) != 0 || le16(sp, *at + 4) != 0) return bad("holds a node that is not a value");
      check_order(values, pgno, sp.substr(*at + kNodeHeader, le16(sp, *at + 6)), previous, std::nullopt, std::nullopt);
    }
    return n;
  }

  // An overflow run named by a node; reads its data into `out` when given.
  bool overflow(const Tree& t, std::string_view data, std::size_t dsize, std::string* out, Counts& c) {
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

  // A record of the free list: [count, page numbers in descending order].
  void free_record(std::uint64_t pgno, std::uint64_t txnid, std::string_view list) {
    const std::string where = "free list record of transaction " + std::to_string(txnid);
    if (txnid > report_.txnid) add(pgno, "free list", where + " is after the meta's transaction");
    if (list.size() < 8 || (list.size() - 8) / 8 < le64(list, 0)) {
      add(pgno, "free list", where + " is shorter than its count");
      return;
    }
    const std::uint64_t count = le64(list, 0);
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::uint64_t page = le64(list, 8 + 8 * i);
      if (i > 0 && page >= le64(list, 8 * i)) {
        add(pgno, "free list", where + " is not in descending order");
        return;
      }
      free_.emplace_back(page, txnid);
    }
  }

  void mark_free() {
    for (const auto& [page, record] : free_) {
      const std::string where = "page " + std::to_string(page) + " (free list of transaction " + std::to_string(record) + ")";
      if (page < 2 || page > last_) {
        add(page, "free list", where + " is outside pages 2.." + std::to_string(last_));
      } else if (state_[page] == kTree) {
        add(page, "free list", where + " is free and reachable from a database at once");
      } else if (state_[page] == kFree) {
        add(page, "free list", where + " is listed twice");
      } else {
        state_[page] = kFree;
        ++report_.free_pages;
      }
    }
  }

  // Every page 2..last is in a tree or in the free list.
  void account() {
    std::uint64_t first_leak = kNoPage;
    for (std::uint64_t p = 2; p < state_.size(); ++p) {
      if (state_[p] != kNone) continue;
      if (first_leak == kNoPage) first_leak = p;
      ++report_.leaked_pages;
    }
    if (report_.leaked_pages != 0) {
      add(first_leak, "free list", std::to_string(report_.leaked_pages) + " pages (the first " +
                                       std::to_string(first_leak) + ") are in no database and not in the free list");
    }
  }

  const PageSource& source_;
  const WalkOptions& options_;
  StructureReport report_;
  std::uint32_t psize_ = 0;
  std::uint64_t last_ = 0;
  std::vector<std::uint8_t> state_;
  std::vector<Tree> named_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> free_;  // (page, transaction)
};

}  // namespace

StructureReport walk_structure(const std::filesystem::path& data_file, const WalkOptions& options) {
  const FdSource source(data_file);
  return Walker(source, options).run();
}

StructureReport walk_structure_bytes(std::string_view bytes, const WalkOptions& options) {
  const MemorySource source(bytes);
  return Walker(source, options).run();
}

}  // namespace lighthouse::lmdb
