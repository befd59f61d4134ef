// The bookkeeping of the structural walk (page_walker.cpp): which pages it
// met in a tree, which the free list lists, and whether every page of the
// file is one or the other exactly once.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lmdb/file_check.h"

namespace lighthouse::lmdb {

class PageAccount {
 public:
  // Reports a problem: the page, its database, what is wrong.
  using Problem = std::function<void(std::uint64_t page, const std::string& database, std::string detail)>;

  // For a walk from a meta whose last page is `last_page` and transaction
  // `txnid`; the counts go to `report`.
  PageAccount(std::uint64_t last_page, std::uint64_t txnid, StructureReport& report, Problem problem);

  // Takes `pgno` for a tree (`what`: "tree", "overflow"); false when it is
  // outside the file's pages or already taken (reported).
  bool claim(std::uint64_t pgno, const std::string& database, const char* what);

  // A record of the free list of transaction `txnid`, found in page `pgno`:
  // [count, page numbers in descending order] (u64 each).
  void free_record(std::uint64_t pgno, std::uint64_t txnid, std::string_view list);

  // After every tree is walked: the listed pages must be free pages
  // (inside the file, in no tree, listed once), and every page from 2 to
  // the last must be in a tree or listed.
  void settle();

 private:
  enum State : std::uint8_t { kNone, kTree, kFree };

  std::uint64_t last_, txnid_;
  StructureReport& report_;
  Problem problem_;
  std::vector<std::uint8_t> state_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> free_;  // (page, transaction)
};

}  // namespace lighthouse::lmdb
