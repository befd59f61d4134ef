// verify(): every promise of the store checked on one read snapshot.
#pragma once

#include <lmdb.h>

#include "lighthouse/integrity.h"
#include "store/schema.h"

namespace lighthouse {

VerifyReport verify_snapshot(MDB_txn* txn, const Databases& dbs, const VerifyOptions& options);

}  // namespace lighthouse
