// libFuzzer target: the readers of a damaged LMDB data file that never go
// through LMDB — the meta page check, the structural walk, and the page
// reader salvage uses. The input is a whole data.mdb (the seed corpus holds
// real ones of small stores, some with flipped bytes): whatever its bytes,
// they must report problems, never crash, read out of bounds, allocate
// without bound or hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lmdb/file_check.h"
#include "lmdb/page_format.h"
#include "lmdb/recovery.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const lighthouse::lmdb::MemorySource source(bytes);
  const auto metas = lighthouse::lmdb::check_meta_pages(source);
  const auto walked = lighthouse::lmdb::walk_structure_bytes(bytes, {std::nullopt, 50});
  // A clean walk accounts for every page.
  if (walked.ok() && walked.pages != 2 + walked.tree_pages + walked.free_pages + walked.leaked_pages) __builtin_trap();
  if (walked.ok() && !metas.ok()) __builtin_trap();  // the walk checks the metas first
  const auto recovered = lighthouse::lmdb::recover_database(source, "events", lighthouse::lmdb::ScanPages::always, 20);
  for (const auto& pair : recovered.pairs) {
    if (pair.key.size() > bytes.size() || pair.value.size() > bytes.size()) __builtin_trap();
  }
  return 0;
}
