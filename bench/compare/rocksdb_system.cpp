// RocksDB: sync=true writes (durable rows), the events in the default column
// family by sequence, and a column family for each index whose keys are
// name ‖ 0 ‖ sequence.
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "system.h"

namespace compare {
namespace {

void check(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) throw std::runtime_error(std::string(what) + ": " + s.ToString());
}

std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
  return out;
}

class RocksSystem : public AdaptedSystem {
 public:
  std::string name() const override { return "rocksdb"; }

  void open(const std::filesystem::path& dir) override {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    options.IncreaseParallelism(2);
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {"by_type", rocksdb::ColumnFamilyOptions()},
        {"by_aggregate", rocksdb::ColumnFamilyOptions()}};
    rocksdb::DB* db = nullptr;
    check(rocksdb::DB::Open(options, dir.string(), families, &handles_, &db), "open");
    db_.reset(db);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[0]));
    it->SeekToLast();
    if (it->Valid()) {
      std::uint64_t s = 0;
      for (unsigned char c : it->key().ToString()) s = (s << 8) | c;
      sequence_ = s;
    }
  }

  void close() override {
    stop_adapter();
    if (db_) {
      for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
      handles_.clear();
      db_->Close();
      db_.reset();
    }
  }

  void append_batch(const std::vector<BenchEvent>& events) override {
    rocksdb::WriteBatch batch;
    for (const auto& e : events) add(batch, e);
    rocksdb::WriteOptions sync;
    sync.sync = true;
    check(db_->Write(sync, &batch), "write");
  }

  void append_one(const BenchEvent& event) override { append_batch({event}); }

  std::uint64_t query_type(const std::string& type, Checks) override { return walk(handles_[1], type); }
  std::uint64_t read_aggregate(const std::string& aggregate, Checks) override {
    return walk(handles_[2], aggregate);
  }

  void settle() override {
    check(db_->Flush(rocksdb::FlushOptions(), handles_), "flush");
    for (;;) {
      std::uint64_t pending = 0, running = 0;
      db_->GetIntProperty("rocksdb.compaction-pending", &pending);
      db_->GetIntProperty("rocksdb.num-running-compactions", &running);
      if (pending == 0 && running == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  std::uint64_t scan_all(const std::function<void()>& progress) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[0]));
    std::uint64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string value = it->value().ToString();
      if (!value.empty() && ++n % 10'000 == 0) progress();
    }
    return n;
  }

  ~RocksSystem() override { close(); }

 private:
  void add(rocksdb::WriteBatch& batch, const BenchEvent& e) {
    std::string seq = be64(sequence_.fetch_add(1) + 1);
    std::string value;
    value += static_cast<char>(e.type.size());
    value += e.type;
    value += static_cast<char>(e.aggregate.size());
    value += e.aggregate;
    value += e.data;
    batch.Put(handles_[0], seq, value);
    batch.Put(handles_[1], e.type + '\0' + seq, rocksdb::Slice());
    if (!e.aggregate.empty()) batch.Put(handles_[2], e.aggregate + '\0' + seq, rocksdb::Slice());
  }

  std::uint64_t walk(rocksdb::ColumnFamilyHandle* index, const std::string& name) {
    const std::string prefix = name + '\0';
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), index));
    std::uint64_t n = 0;
    std::string value;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      rocksdb::Slice seq(it->key().data() + prefix.size(), 8);
      check(db_->Get(rocksdb::ReadOptions(), handles_[0], seq, &value), "get");
      const char* p = value.data();
      std::size_t tl = static_cast<unsigned char>(p[0]);
      std::string type(p + 1, tl);
      std::size_t al = static_cast<unsigned char>(p[1 + tl]);
      std::string aggregate(p + 2 + tl, al);
      std::string data(p + 2 + tl + al, value.size() - 2 - tl - al);
      n += data.empty() ? 0 : 1;
    }
    return n;
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::atomic<std::uint64_t> sequence_{0};
};

}  // namespace

std::unique_ptr<System> make_rocksdb() { return std::make_unique<RocksSystem>(); }

}  // namespace compare
