// LMDB 0.9's on-disk layout (mdb.c of 0.9.24, x86_64): offsets, flags and
// sizes the structural check reads. Only the check uses them; LMDB itself
// stays the only writer of these pages.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace lighthouse::lmdb {

// Page header (MDB_page): 16 bytes.
inline constexpr std::size_t kPageNumber = 0;   // u64 mp_pgno
inline constexpr std::size_t kPagePad = 8;      // u16 mp_pad (LEAF2: key size)
inline constexpr std::size_t kPageFlags = 10;   // u16 mp_flags
inline constexpr std::size_t kPageLower = 12;   // u16 mp_lower
inline constexpr std::size_t kPageUpper = 14;   // u16 mp_upper
inline constexpr std::size_t kPageCount = 12;   // u32 mp_pages (overflow pages)
inline constexpr std::size_t kPageHeader = 16;  // PAGEHDRSZ

inline constexpr std::uint16_t kPageBranch = 0x01;
inline constexpr std::uint16_t kPageLeaf = 0x02;
inline constexpr std::uint16_t kPageOverflow = 0x04;
inline constexpr std::uint16_t kPageMeta = 0x08;
inline constexpr std::uint16_t kPageDirty = 0x10;
inline constexpr std::uint16_t kPageLeaf2 = 0x20;
inline constexpr std::uint16_t kPageSub = 0x40;

// Node (MDB_node): lo, hi, flags, key size, then the key and the data.
inline constexpr std::size_t kNodeHeader = 8;
inline constexpr std::uint16_t kNodeBigData = 0x01;  // F_BIGDATA: data is an overflow page number
inline constexpr std::uint16_t kNodeSubData = 0x02;  // F_SUBDATA: data is an MDB_db
inline constexpr std::uint16_t kNodeDupData = 0x04;  // F_DUPDATA: data holds duplicates

// Database record (MDB_db): 48 bytes.
inline constexpr std::size_t kDbPad = 0;        // u32 md_pad (LEAF2 key size; the page size in FREE_DBI)
inline constexpr std::size_t kDbFlags = 4;      // u16 md_flags
inline constexpr std::size_t kDbDepth = 6;      // u16 md_depth
inline constexpr std::size_t kDbBranch = 8;     // u64 md_branch_pages
inline constexpr std::size_t kDbLeaf = 16;      // u64 md_leaf_pages
inline constexpr std::size_t kDbOverflow = 24;  // u64 md_overflow_pages
inline constexpr std::size_t kDbEntries = 32;   // u64 md_entries
inline constexpr std::size_t kDbRoot = 40;      // u64 md_root
inline constexpr std::size_t kDbSize = 48;

inline constexpr std::uint16_t kDbReverseKey = 0x02, kDbDupSort = 0x04, kDbIntegerKey = 0x08, kDbDupFixed = 0x10,
                               kDbIntegerDup = 0x20, kDbReverseDup = 0x40;

// Meta page: the header, then MDB_meta.
inline constexpr std::size_t kMetaMagic = 16;     // u32 0xBEEFC0DE
inline constexpr std::size_t kMetaVersion = 20;   // u32 1
inline constexpr std::size_t kMetaMapSize = 32;   // u64
inline constexpr std::size_t kMetaFreeDb = 40;    // MDB_db of FREE_DBI (md_pad: the page size)
inline constexpr std::size_t kMetaMainDb = 88;    // MDB_db of MAIN_DBI
inline constexpr std::size_t kMetaLastPage = 136; // u64 mm_last_pg
inline constexpr std::size_t kMetaTxnid = 144;    // u64 mm_txnid
inline constexpr std::size_t kMetaBytes = 152;

inline constexpr std::uint32_t kMagic = 0xBEEFC0DE;
inline constexpr std::uint32_t kDataVersion = 1;
inline constexpr std::uint32_t kMaxPageSize = 0x8000;
inline constexpr unsigned kMaxDepth = 32;  // CURSOR_STACK

inline std::uint16_t le16(std::string_view b, std::size_t at) {
  std::uint16_t v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}
inline std::uint32_t le32(std::string_view b, std::size_t at) {
  std::uint32_t v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}
inline std::uint64_t le64(std::string_view b, std::size_t at) {
  std::uint64_t v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}
inline std::string hex16(std::uint16_t v) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%02x", v);
  return text;
}
inline std::string hex32(std::uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", v);
  return text;
}

// Where the check reads the file from: the file itself with pread, or its
// bytes in memory.
class PageSource {
 public:
  virtual ~PageSource() = default;
  virtual std::uint64_t size() const = 0;
  // Reads `n` bytes at `offset` into `out`; false when they are past the end.
  virtual bool read(std::uint64_t offset, std::size_t n, std::string& out) const = 0;
};

class FdSource : public PageSource {
 public:
  explicit FdSource(const std::filesystem::path& file);  // Errors: io_error
  ~FdSource() override;
  FdSource(const FdSource&) = delete;
  FdSource& operator=(const FdSource&) = delete;
  std::uint64_t size() const override { return size_; }
  bool read(std::uint64_t offset, std::size_t n, std::string& out) const override;
  // Asks the kernel to read the whole file in, for a walk of every page.
  void read_ahead() const;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

class MemorySource : public PageSource {
 public:
  explicit MemorySource(std::string_view bytes) : bytes_(bytes) {}
  std::uint64_t size() const override { return bytes_.size(); }
  bool read(std::uint64_t offset, std::size_t n, std::string& out) const override;

 private:
  std::string_view bytes_;
};

struct MetaCheck;
struct MetaPage;
struct FileProblem;
// `raw`, when given, receives the bytes read of each meta page (empty: not
// read), the ones the check judged.
MetaCheck check_meta_pages(const PageSource& source, std::array<std::string, 2>* raw = nullptr);
// Whether both meta pages still hold `raw`, read again. A writer of another
// thread or process rewrites a meta page at every commit, and a read of it
// may see a write half done: two reads, then two equal reads again, saw
// both pages as they were together at one moment.
bool meta_pages_unchanged(const PageSource& source, const std::array<std::string, 2>& raw);
struct StructureReport;
struct WalkOptions;
// walk_structure (file_check.h) over any source of the file's bytes.
StructureReport walk_structure(const PageSource& source, const WalkOptions& options);
// The checks of the meta page a walk starts from (its last page and roots).
void check_meta_roots(const MetaPage& meta, int index, std::uint64_t file_size, std::vector<FileProblem>& problems);

}  // namespace lighthouse::lmdb
