#include "store/replication_access.h"

#include "store/store_impl.h"
#include "store/write_txn.h"

namespace lighthouse::replication_access {
namespace {

static_assert(schema::meta::kHighWater.substr(schema::meta::kReplicationPrefix.size()) == kHighWater);

std::string key_of(std::string_view name) { return std::string(schema::meta::kReplicationPrefix) + std::string(name); }

void put_entries(MDB_txn* txn, const Databases& dbs, const std::vector<Entry>& entries) {
  for (const auto& [name, value] : entries) {
    const std::string key = key_of(name);
    if (value) {
      lmdb::put(txn, dbs.meta, key, *value);
    } else {
      lmdb::del(txn, dbs.meta, key, "removing a replication key");
    }
  }
}

}  // namespace

std::optional<std::string> read(const Store& store, std::string_view name) {
  Store::Impl& impl = StoreAccess::impl(store);
  auto lock = impl.env().use();
  auto txn = impl.env().begin_read();
  std::string_view value;
  if (!lmdb::get(txn->get(), impl.dbs().meta, key_of(name), value)) return std::nullopt;
  return std::string(value);
}

void refuse_writes_if_read_only(const Store& store) {
  StoreAccess::impl(store).refuse_read_only(StoreAccess::read_only_handle(store));
}

void write(Store& store, const std::vector<Entry>& entries) {
  refuse_writes_if_read_only(store);
  Store::Impl& impl = StoreAccess::impl(store);
  WritePath& writer = impl.writer();
  writer.run_exclusive(ExclusiveTask::replication, [&] {
    writer.write_exclusive([&](MDB_txn* txn) { put_entries(txn, impl.dbs(), entries); });
  });
}

void apply(Store& store, const std::vector<RecordedEvent>& events, const std::vector<Entry>& entries) {
  refuse_writes_if_read_only(store);
  Store::Impl& impl = StoreAccess::impl(store);
  WritePath& writer = impl.writer();
  writer.run_exclusive(ExclusiveTask::replication, [&] {
    writer.write_exclusive([&](MDB_txn* txn) {
      if (!schema::read_replica_of(txn, impl.dbs())) {
        throw Error(ErrorCode::invalid_argument,
                    "store '" + impl.path().string() + "' is not a read replica (it was promoted): it takes no events from a stream");
      }
      {
        WriteTxn write(txn, impl.dbs(), impl.options(), impl.node_id(), 0);
        write.import(events);
        write.finish();
      }
      put_entries(txn, impl.dbs(), entries);
    });
  });
}

void enter_quorum(Store& store, std::uint64_t mark, std::function<void()> wake) {
  write(store, {{std::string(kHighWater), std::to_string(mark)}});
  StoreAccess::impl(store).gate().attach(mark, std::move(wake));
}

void leave_quorum(Store& store) {
  if (!read(store, kHighWater)) return;
  write(store, {{std::string(kHighWater), std::nullopt}});
}

void advance_high_water(Store& store, std::uint64_t mark) { StoreAccess::impl(store).gate().advance(mark); }

void detach_quorum(Store& store) noexcept { StoreAccess::impl(store).gate().detach(); }

void note_lag(Store& store, const std::string& stream, std::uint64_t events, double seconds) {
  StoreAccess::impl(store).health().note_replication_lag(HealthController::ReplicationLag{stream, events, seconds});
}

void clear_lag(Store& store) noexcept { StoreAccess::impl(store).health().note_replication_lag(std::nullopt); }

std::size_t appends_waiting(const Store& store) { return StoreAccess::impl(store).gate().held(); }

void read_past_high_water() noexcept { ReplicationGate::read_past_mark(); }

AppendResult append_own(Store& store, Batch batch) {
  refuse_writes_if_read_only(store);
  Store::Impl& impl = StoreAccess::impl(store);
  return impl.writer().submit(std::move(batch), true).get();
}

}  // namespace lighthouse::replication_access
