#include "lmdb/page_account.h"

#include <algorithm>

#include "lmdb/page_format.h"

namespace lighthouse::lmdb {

PageAccount::PageAccount(std::uint64_t last_page, std::uint64_t txnid, StructureReport& report, Problem problem)
    : last_(last_page), txnid_(txnid), report_(report), problem_(std::move(problem)) {
  // The meta check bounds last_page by the file's size (plus what the free
  // list may hold past its end): this is at most a few MiB.
  state_.assign(static_cast<std::size_t>(std::min<std::uint64_t>(last_ + 1, 1ull << 40)), kNone);
}

bool PageAccount::claim(std::uint64_t pgno, const std::string& database, const char* what) {
  if (pgno < 2 || pgno > last_) {
    problem_(pgno, database,
             std::string(what) + " page " + std::to_string(pgno) + " is outside pages 2.." + std::to_string(last_));
    return false;
  }
  if (state_[pgno] != kNone) {
    problem_(pgno, database, std::string(what) + " page " + std::to_string(pgno) + " is reachable twice");
    return false;
  }
  state_[pgno] = kTree;
  ++report_.tree_pages;
  return true;
}

void PageAccount::free_record(std::uint64_t pgno, std::uint64_t txnid, std::string_view list) {
  const std::string where = "free list record of transaction " + std::to_string(txnid);
  if (txnid > txnid_) problem_(pgno, "free list", where + " is after the meta's transaction");
  if (list.size() < 8 || (list.size() - 8) / 8 < le64(list, 0)) {
    problem_(pgno, "free list", where + " is shorter than its count");
    return;
  }
  const std::uint64_t count = le64(list, 0);
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t page = le64(list, 8 + 8 * i);
    if (i > 0 && page >= le64(list, 8 * i)) {
      problem_(pgno, "free list", where + " is not in descending order");
      return;
    }
    free_.emplace_back(page, txnid);
  }
}

void PageAccount::settle() {
  for (const auto& [page, record] : free_) {
    const std::string where = "page " + std::to_string(page) + " (free list of transaction " + std::to_string(record) + ")";
    if (page < 2 || page > last_) {
      problem_(page, "free list", where + " is outside pages 2.." + std::to_string(last_));
    } else if (state_[page] == kTree) {
      problem_(page, "free list", where + " is free and reachable from a database at once");
    } else if (state_[page] == kFree) {
      problem_(page, "free list", where + " is listed twice");
    } else {
      state_[page] = kFree;
      ++report_.free_pages;
    }
  }
  std::uint64_t first_leak = kNoPage;
  for (std::uint64_t p = 2; p < state_.size(); ++p) {
    if (state_[p] != kNone) continue;
    if (first_leak == kNoPage) first_leak = p;
    ++report_.leaked_pages;
  }
  if (report_.leaked_pages != 0) {
    problem_(first_leak, "free list", std::to_string(report_.leaked_pages) + " pages (the first " +
                                          std::to_string(first_leak) + ") are in no database and not in the free list");
  }
}

}  // namespace lighthouse::lmdb
