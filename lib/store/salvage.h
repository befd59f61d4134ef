// salvage(): a new store from the event records of a damaged one that can
// still be read and verified (see Store::salvage).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lighthouse/integrity.h"
#include "store/store_impl.h"

namespace lighthouse {

// Writing a store anew from another's records (salvage and upgrade).
namespace store_copy {

// What the old store's `meta` says, read from its pages (lmdb/recovery.h).
struct OldMeta {
  std::optional<std::uint64_t> base_sequence, last_sequence;
  std::optional<Sha256> base_chain;
  std::string base_archive;
  std::optional<std::uint32_t> node_id;
  std::map<std::string, EventId> checkpoints;
};
OldMeta read_old_meta(const std::filesystem::path& data);

// The new store's base, as the old one's truncation left it: its first
// sequence, chain anchor and archive, the kept heads of aggregates whose
// events were all truncated, the dropped events' idempotency entries, and
// the head before the base of each aggregate whose first kept event
// (`first_versions`: aggregate → version) is not its first.
void write_base(Store::Impl& impl, const OldMeta& old, std::uint64_t base, const Sha256& anchor,
                const std::map<std::string, std::uint64_t>& first_versions, const std::filesystem::path& data);

}  // namespace store_copy

SalvageReport salvage_store(const std::filesystem::path& damaged, const std::filesystem::path& destination);

}  // namespace lighthouse
