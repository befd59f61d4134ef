// The sets of duplicates of the structural walk (page_walker.h): a
// DUPSORT key's values in a sub-page inside its node, or in a
// sub-database of their own; fixed-size (DUPFIXED) values packed in LEAF2
// pages.
#include "lmdb/page_walker.h"

namespace lighthouse::lmdb::walk {

// A LEAF2 page or sub-page of `size` bytes: fixed-size keys, packed.
void Walker::walk_leaf2(const Tree& t, std::uint64_t pgno, std::string_view page, std::size_t size, std::size_t n,
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

Tree Walker::named_tree(std::string_view name, std::string_view record) {
  Tree t{std::string(name), TreeKind::plain, decode_db(record, 0)};
  const std::uint16_t f = t.db.flags;
  if ((f & kDbDupSort) != 0) t.kind = TreeKind::dupsort;
  t.dupfixed = (f & kDbDupFixed) != 0;
  t.ordered_keys = (f & (kDbReverseKey | kDbIntegerKey)) == 0 && (f & (kDbIntegerDup | kDbReverseDup)) == 0;
  return t;
}

void Walker::dup_node(const Tree& t, std::uint64_t pgno, std::uint16_t flags, std::string_view data, std::size_t dsize,
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
std::size_t Walker::sub_page(const Tree& t, std::uint64_t pgno, std::string_view sp) {
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

}  // namespace lighthouse::lmdb::walk
