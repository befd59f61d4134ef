// verify(): every promise of the store checked on one read snapshot.
#pragma once

#include <lmdb.h>

#include "lighthouse/integrity.h"
#include "lmdb/file_check.h"
#include "store/environment.h"
#include "store/schema.h"

namespace lighthouse {

// Every check of the store's own data on the snapshot of `txn`, through
// LMDB. REQUIRES: the file's structure was found whole for this snapshot.
VerifyReport verify_snapshot(MDB_txn* txn, const Databases& dbs, const VerifyOptions& options);

// verify(): the structural check of the LMDB file first (on the snapshot
// a read transaction pins, from the meta page of its transaction, so that
// concurrent writers cause no false report); when it finds damage, that is
// the report — LMDB never reads the damaged pages — and the damage mark is
// left beside data.mdb; otherwise verify_snapshot() on the same snapshot.
VerifyReport verify_store(const Environment& env, const Databases& dbs, const VerifyOptions& options);

// Store::check_file(): the walk alone on the current meta, without LMDB.
VerifyReport check_store_file(const std::filesystem::path& store);

// Returns true iff `report` holds a problem of the file's structure.
bool structure_damaged(const VerifyReport& report);

// The structural problems of a walk as verify() reports them.
void add_structure_problems(const lmdb::StructureReport& structure, VerifyReport& report);

}  // namespace lighthouse
