#include "lighthouse/store.h"

#include "store/store_impl.h"

namespace lighthouse {

Store Store::open(const std::filesystem::path& path, const Options& options) {
  return Store(Impl::open(path, options), options.read_only);
}

Store::Store(std::shared_ptr<Impl> impl, bool read_only_handle)
    : impl_(std::move(impl)), read_only_handle_(read_only_handle) {}

Store::~Store() = default;
Store::Store(const Store&) = default;
Store& Store::operator=(const Store&) = default;
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;

namespace {

Batch single_event_batch(EventData event, ExpectedVersion expected, Priority priority) {
  Batch batch;
  batch.priority = priority;
  if (expected.kind() != ExpectedVersion::Kind::any) {
    if (event.aggregate.empty()) {
      throw Error(ErrorCode::invalid_argument,
                  "expected version " + expected.to_string() +
                      " given for an event without aggregate");
    }
    batch.expectations.push_back({event.aggregate, expected});
  }
  batch.events.push_back(std::move(event));
  return batch;
}

}  // namespace

AppendResult Store::append(EventData event, ExpectedVersion expected, Priority priority) {
  return append_batch(single_event_batch(std::move(event), expected, priority));
}

AppendResult Store::append_batch(Batch batch) {
  impl().refuse_read_only(read_only_handle_);
  impl().refuse_on_committer_thread("append (which waits for its commit)");
  return impl().submit(std::move(batch), false).get();
}

std::future<AppendResult> Store::append_async(EventData event, ExpectedVersion expected,
                                              Priority priority) {
  return append_batch_async(single_event_batch(std::move(event), expected, priority));
}

std::future<AppendResult> Store::append_batch_async(Batch batch) {
  impl().refuse_read_only(read_only_handle_);
  return impl().submit(std::move(batch), false);
}

AppendResult Store::append_batch(std::vector<EventData> events,
                                 std::vector<AggregateExpectation> expectations) {
  Batch batch;
  batch.events = std::move(events);
  batch.expectations = std::move(expectations);
  return append_batch(std::move(batch));
}

std::vector<AppendResult> Store::append_batches(std::vector<Batch> batches) {
  impl().refuse_read_only(read_only_handle_);
  if (batches.empty()) return {};
  impl().refuse_on_committer_thread("append_batches (which waits for its commit)");
  return impl().submit(std::move(batches), false).get();
}

RecordedEvent Store::get(const EventId& id) const { return impl().get(id); }

StoreStats Store::stats() const {
  StoreStats s = impl().stats();
  s.read_only = s.read_only || read_only_handle_;
  return s;
}

// A moved-from handle has no store: an empty path and default options.
const std::filesystem::path& Store::path() const noexcept {
  static const std::filesystem::path kNone;
  return impl_ ? impl_->path() : kNone;
}
const Options& Store::options() const noexcept {
  static const Options kNone;
  return impl_ ? impl_->options() : kNone;
}

Store::Impl& Store::impl() const {
  if (!impl_) throw Error(ErrorCode::closed, "this Store handle was moved from: it has no store");
  return *impl_;
}

void Store::close() {
  if (!impl_) return;
  impl().refuse_on_committer_thread("close()");
  impl().shutdown();
}

}  // namespace lighthouse
