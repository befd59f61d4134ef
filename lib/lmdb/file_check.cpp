// The meta pages and the page source of the structural check
// (file_check.h); the walk itself is page_walker.cpp.
#include "lmdb/file_check.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lighthouse/error.h"
#include "lmdb/page_format.h"

namespace lighthouse::lmdb {

FdSource::FdSource(const std::filesystem::path& file) : path_(file) {
  fd_ = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw Error(ErrorCode::io_error, "cannot open '" + file.string() + "' to check it: " + std::strerror(errno));
  }
  const off_t end = ::lseek(fd_, 0, SEEK_END);
  size_ = end < 0 ? 0 : static_cast<std::uint64_t>(end);
}

void FdSource::read_ahead() const {
  // The walk reads every page, in tree order rather than file order: ask
  // the kernel to read the file in meanwhile (a cold check of a file on disk
  // is otherwise one seek per page).
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_WILLNEED);
}

FdSource::~FdSource() {
  if (fd_ >= 0) ::close(fd_);
}

bool FdSource::read(std::uint64_t offset, std::size_t n, std::string& out) const {
  if (offset > size_ || n > size_ - offset) return false;
  out.resize(n);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd_, out.data() + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      throw Error(ErrorCode::io_error, "cannot read '" + path_.string() + "' to check it: " + std::strerror(errno));
    }
    if (got == 0) return false;  // the file shrank
    done += static_cast<std::size_t>(got);
  }
  return true;
}

bool MemorySource::read(std::uint64_t offset, std::size_t n, std::string& out) const {
  if (offset > bytes_.size() || n > bytes_.size() - offset) return false;
  out.assign(bytes_.substr(static_cast<std::size_t>(offset), n));
  return true;
}

namespace {

MetaPage decode_meta(std::string_view m) {
  MetaPage meta;
  meta.page_size = le32(m, kMetaFreeDb + kDbPad);
  meta.map_size = le64(m, kMetaMapSize);
  meta.free_root = le64(m, kMetaFreeDb + kDbRoot);
  meta.main_root = le64(m, kMetaMainDb + kDbRoot);
  meta.last_page = le64(m, kMetaLastPage);
  meta.txnid = le64(m, kMetaTxnid);
  return meta;
}

bool is_page_size(std::uint32_t size) { return size >= 512 && size <= kMaxPageSize && (size & (size - 1)) == 0; }

// What LMDB reads of either meta page before it picks one.
void check_one_meta(std::string_view m, int index, std::vector<FileProblem>& problems) {
  const auto problem = [&](std::string detail) {
    problems.push_back({static_cast<std::uint64_t>(index), "meta", std::move(detail)});
  };
  if (le64(m, kPageNumber) != static_cast<std::uint64_t>(index)) problem("the meta page says it is page " + std::to_string(le64(m, kPageNumber)));
  if (le16(m, kPageFlags) != kPageMeta) problem("flags " + hex16(le16(m, kPageFlags)) + " are not a meta page's");
  if (le32(m, kMetaMagic) != kMagic) problem("no LMDB magic number (" + hex32(le32(m, kMetaMagic)) + ")");
  if (le32(m, kMetaVersion) != kDataVersion) problem("data format version " + std::to_string(le32(m, kMetaVersion)) + ", not 1");
  const MetaPage meta = decode_meta(m);
  if (!is_page_size(meta.page_size)) problem("page size " + std::to_string(meta.page_size) + " is not a power of 2 from 512 to 32768");
  // LMDB maps at least this much when it opens the file: more than a
  // process's address space (128 TiB) is damage, not a size anyone set.
  if (meta.map_size > (std::uint64_t{1} << 47)) {
    problem("map size " + std::to_string(meta.map_size) + " bytes is more than a process can map");
  }
  if (meta.txnid != 0 && (meta.txnid & 1) != static_cast<std::uint64_t>(index)) {
    problem("transaction " + std::to_string(meta.txnid) + " cannot be written in meta page " + std::to_string(index));
  }
}

}  // namespace

// The meta a snapshot is read from: its last page and roots. (The other
// one may hold what LMDB wrote back after a failed meta write — the new
// roots with the old last page — and is never used.)
void check_meta_roots(const MetaPage& meta, int index, std::uint64_t file_size, std::vector<FileProblem>& problems) {
  const auto problem = [&](std::string detail) {
    problems.push_back({static_cast<std::uint64_t>(index), "meta", std::move(detail)});
  };
  if (meta.last_page < 1) problem("last page " + std::to_string(meta.last_page) + " is before the meta pages' end");
  const std::uint64_t pages = is_page_size(meta.page_size) ? file_size / meta.page_size : 0;
  for (auto [root, name] : {std::pair{meta.free_root, "free list"}, std::pair{meta.main_root, "main database"}}) {
    if (root != kNoPage && (root < 2 || root > meta.last_page)) {
      problem("the " + std::string(name) + "'s root page " + std::to_string(root) + " is outside pages 2.." +
              std::to_string(meta.last_page));
    }
  }
  // The file may end before the last page only by pages the free list
  // holds: by a few, not by millions.
  if (meta.last_page >= pages + (1ull << 20)) {
    problem("last page " + std::to_string(meta.last_page) + " is far past the file's " + std::to_string(pages) + " pages");
  }
}

MetaCheck check_meta_pages(const PageSource& source, std::array<std::string, 2>* raw) {
  MetaCheck check;
  std::string page0, page1;
  if (!source.read(0, kMetaBytes, page0)) {
    check.problems.push_back({0, "meta", "the file is shorter than a meta page (" + std::to_string(source.size()) + " bytes)"});
    return check;
  }
  const std::uint32_t page_size = le32(page0, kMetaFreeDb + kDbPad);
  check_one_meta(page0, 0, check.problems);
  check.metas[0] = decode_meta(page0);
  if (!is_page_size(page_size)) return check;  // page 1's place is unknown
  if (!source.read(page_size, kMetaBytes, page1)) {
    check.problems.push_back({1, "meta", "the file ends before the second meta page"});
    return check;
  }
  check_one_meta(page1, 1, check.problems);
  check.metas[1] = decode_meta(page1);
  if (check.metas[1].page_size != page_size) {
    check.problems.push_back({1, "meta", "page size " + std::to_string(check.metas[1].page_size) +
                                             " differs from page 0's " + std::to_string(page_size)});
  }
  // Commits alternate between the two: their transactions are consecutive
  // (both 0 in a new environment). A damaged ID would make LMDB pick it.
  const std::uint64_t t0 = check.metas[0].txnid, t1 = check.metas[1].txnid;
  if (!(t0 == 0 && t1 == 0) && (t0 > t1 ? t0 - t1 : t1 - t0) != 1) {
    check.problems.push_back({kNoPage, "meta", "the meta pages hold transactions " + std::to_string(t0) + " and " +
                                                   std::to_string(t1) + ", which are not consecutive"});
  }
  if (check.ok()) check_meta_roots(check.current(), t0 < t1 ? 1 : 0, source.size(), check.problems);
  if (raw != nullptr) *raw = {std::move(page0), std::move(page1)};
  return check;
}

bool meta_pages_unchanged(const PageSource& source, const std::array<std::string, 2>& raw) {
  std::string again;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i].empty()) continue;
    const std::uint64_t at = i == 0 ? 0 : le32(raw[0], kMetaFreeDb + kDbPad);
    if (!source.read(at, raw[i].size(), again) || again != raw[i]) return false;
  }
  return true;
}

MetaCheck check_meta_pages(const std::filesystem::path& data_file) { return check_meta_pages(FdSource(data_file)); }

}  // namespace lighthouse::lmdb
