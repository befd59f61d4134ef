#include "lmdb/recovery.h"

#include <set>

#include "lmdb/file_check.h"
#include "lmdb/page_format.h"

namespace lighthouse::lmdb {
namespace {

class Reader {
 public:
  Reader(const PageSource& source, std::uint32_t psize, std::uint64_t pages)
      : source_(source), psize_(psize), pages_(pages) {}

  // The page, when it reads as one: right number, known flags, sane bounds.
  bool page(std::uint64_t pgno, std::string& out) const {
    if (pgno < 2 || pgno >= pages_ || !source_.read(pgno * psize_, psize_, out)) return false;
    if (le64(out, kPageNumber) != pgno) return false;
    const std::uint16_t lower = le16(out, kPageLower), upper = le16(out, kPageUpper);
    return lower >= kPageHeader && lower <= upper && upper <= psize_;
  }

  // The data of a node at `at` of a leaf page, following an overflow run.
  bool node_data(std::string_view page, std::size_t at, std::string& value) const {
    const std::uint16_t ksize = le16(page, at + 6), flags = le16(page, at + 4);
    const std::size_t dsize = le16(page, at) | (std::size_t{le16(page, at + 2)} << 16);
    const std::size_t data_at = at + kNodeHeader + ksize;
    if ((flags & kNodeBigData) == 0) {
      if (data_at + dsize > page.size()) return false;
      value.assign(page.substr(data_at, dsize));
      return true;
    }
    if (data_at + 8 > page.size()) return false;
    const std::uint64_t first = le64(page, data_at);
    std::string head;
    if (first < 2 || first >= pages_ || !source_.read(first * psize_, kPageHeader, head)) return false;
    if (le64(head, kPageNumber) != first || le16(head, kPageFlags) != kPageOverflow) return false;
    return source_.read(first * psize_ + kPageHeader, dsize, value);
  }

  std::uint32_t psize() const { return psize_; }
  std::uint64_t pages() const { return pages_; }

 private:
  const PageSource& source_;
  std::uint32_t psize_;
  std::uint64_t pages_;
};

// Collects the plain pairs of one tree, depth first, skipping what does not read.
class TreeCollector {
 public:
  TreeCollector(const Reader& reader, Recovery& out, std::set<std::uint64_t>& visited)
      : reader_(reader), out_(out), visited_(visited) {}

  void walk(std::uint64_t pgno, unsigned level) {
    if (level > kMaxDepth || !visited_.insert(pgno).second) return;
    std::string page;
    if (!reader_.page(pgno, page)) {
      ++out_.unreadable_pages;
      return;
    }
    const std::uint16_t flags = le16(page, kPageFlags);
    const std::size_t n = (le16(page, kPageLower) - kPageHeader) / 2;
    if (flags != kPageBranch && flags != kPageLeaf) {
      ++out_.unreadable_pages;
      return;
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t at = le16(page, kPageHeader + 2 * i);
      if (at + kNodeHeader > page.size() || at + kNodeHeader + le16(page, at + 6) > page.size()) {
        ++out_.unreadable_pages;
        continue;
      }
      if (flags == kPageBranch) {
        walk(le16(page, at) | (std::uint64_t{le16(page, at + 2)} << 16) | (std::uint64_t{le16(page, at + 4)} << 32),
             level + 1);
        continue;
      }
      RecoveredPair pair;
      pair.key.assign(page.substr(at + kNodeHeader, le16(page, at + 6)));
      if (reader_.node_data(page, at, pair.value)) out_.pairs.push_back(std::move(pair));
    }
  }

 private:
  const Reader& reader_;
  Recovery& out_;
  std::set<std::uint64_t>& visited_;
};

// The root of named database `name` in the main tree of `main_root`.
std::optional<std::uint64_t> named_root(const Reader& reader, std::uint64_t main_root, const std::string& name) {
  Recovery main;
  std::set<std::uint64_t> visited;
  TreeCollector(reader, main, visited).walk(main_root, 1);
  for (const auto& p : main.pairs) {
    if (p.key == name && p.value.size() == kDbSize) return le64(p.value, kDbRoot);
  }
  return std::nullopt;
}

// Every leaf page not yet visited whose nodes are plain pairs with keys of
// `key_size` bytes.
void scan(const Reader& reader, std::size_t key_size, const std::set<std::uint64_t>& visited, Recovery& out) {
  out.scanned = true;
  std::string page;
  for (std::uint64_t pgno = 2; pgno < reader.pages(); ++pgno) {
    if (visited.count(pgno) != 0 || !reader.page(pgno, page) || le16(page, kPageFlags) != kPageLeaf) continue;
    const std::size_t n = (le16(page, kPageLower) - kPageHeader) / 2;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t at = le16(page, kPageHeader + 2 * i);
      if (at + kNodeHeader > page.size()) break;
      const std::uint16_t ksize = le16(page, at + 6), flags = le16(page, at + 4);
      if ((key_size != 0 && ksize != key_size) || (flags & ~kNodeBigData) != 0 || at + kNodeHeader + ksize > page.size()) {
        continue;
      }
      RecoveredPair pair;
      pair.key.assign(page.substr(at + kNodeHeader, ksize));
      pair.reachable = false;
      if (reader.node_data(page, at, pair.value)) out.pairs.push_back(std::move(pair));
    }
  }
}

}  // namespace

Recovery recover_database(const std::filesystem::path& data_file, const std::string& name, ScanPages scan_pages,
                          std::size_t key_size) {
  return recover_database(FdSource(data_file), name, scan_pages, key_size);
}

Recovery recover_database(const PageSource& source, const std::string& name, ScanPages scan_pages,
                          std::size_t key_size) {
  const MetaCheck metas = check_meta_pages(source);
  // The meta that reads: the current one, or the other when it is damaged.
  std::uint32_t psize = metas.metas[0].page_size;
  if (psize < 512 || psize > kMaxPageSize || (psize & (psize - 1)) != 0) psize = 4096;
  const std::uint64_t pages = source.size() / psize;
  const Reader reader(source, psize, pages);
  Recovery out;
  std::set<std::uint64_t> visited;
  for (const MetaPage* meta : {&metas.current(), &metas.metas[metas.current().txnid == metas.metas[0].txnid ? 1 : 0]}) {
    if (meta->main_root == kNoPage || meta->main_root >= pages) continue;
    if (auto root = named_root(reader, meta->main_root, name)) {
      out.tree_found = true;
      if (*root != kNoPage) TreeCollector(reader, out, visited).walk(*root, 1);
      break;
    }
  }
  const bool tree_damaged = !out.tree_found || out.unreadable_pages != 0;
  if (scan_pages == ScanPages::always || (scan_pages == ScanPages::when_tree_damaged && tree_damaged)) {
    scan(reader, key_size, visited, out);
  }
  return out;
}

}  // namespace lighthouse::lmdb
