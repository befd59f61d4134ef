// repair(): the secondary indexes and counters rebuilt from `events`.
#pragma once

#include "lighthouse/integrity.h"
#include "store/write_path.h"

namespace lighthouse {

// Rebuilds by_type, by_aggregate, by_idempotency_key (keeping the keys of
// truncated events), aggregate_heads and the meta counters in one write
// transaction. Never drops or rewrites an event: one whose record does not
// decode or whose checksum fails is reported in `report` and left for the
// operator. REQUIRES: on the committer thread (an exclusive task).
void rebuild_indexes(WritePath& writer, const Databases& dbs, RepairReport& report);

}  // namespace lighthouse
