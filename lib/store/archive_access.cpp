#include "store/archive_access.h"

#include "store/retention.h"
#include "store/store_impl.h"
#include "store/write_txn.h"

namespace lighthouse::store_access {

const Options& options(const Store& store) { return StoreAccess::impl(store).options(); }

void refuse_read_only(const Store& store) {
  StoreAccess::impl(store).refuse_read_only(StoreAccess::read_only_handle(store));
}

void begin_import(Store& store) {
  WritePath& writer = StoreAccess::impl(store).writer();
  const Databases& dbs = StoreAccess::impl(store).dbs();
  writer.run_exclusive(ExclusiveTask::import, [&] {
    writer.write_exclusive([&](MDB_txn* t) { lmdb::put(t, dbs.meta, schema::meta::kImportInProgress, "1"); });
  });
}

void end_import(Store& store) {
  WritePath& writer = StoreAccess::impl(store).writer();
  const Databases& dbs = StoreAccess::impl(store).dbs();
  writer.run_exclusive(ExclusiveTask::import, [&] {
    writer.write_exclusive([&](MDB_txn* t) { lmdb::del(t, dbs.meta, schema::meta::kImportInProgress, "clearing the import mark"); });
  });
}

void import_events(Store& store, const std::vector<RecordedEvent>& events) {
  Store::Impl& impl = StoreAccess::impl(store);
  WritePath& writer = impl.writer();
  writer.run_exclusive(ExclusiveTask::import, [&] {
    writer.write_exclusive([&](MDB_txn* t) {
      WriteTxn write(t, impl.dbs(), impl.options(), impl.node_id(), 0);
      write.import(events);
      write.finish();
    });
  });
}

void drop_events(Store& store, std::uint64_t to_sequence, const std::string& archive) {
  Store::Impl& impl = StoreAccess::impl(store);
  lighthouse::drop_events(impl.writer(), impl.dbs(), to_sequence, archive);
}

}  // namespace lighthouse::store_access
