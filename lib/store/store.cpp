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
void refuse_if_read_only(bool read_only, const std::filesystem::path& path) {
  if (read_only) {
    throw Error(ErrorCode::read_only, "store '" + path.string() + "' was opened read-only");
  }
}
}  // namespace

AppendResult Store::append(const EventData& event, ExpectedVersion expected) {
  Batch batch;
  batch.events.push_back(event);
  if (expected.kind() != ExpectedVersion::Kind::any) {
    if (event.aggregate.empty()) {
      throw Error(ErrorCode::invalid_argument,
                  "expected version " + expected.to_string() +
                      " given for an event without aggregate");
    }
    batch.expectations.push_back({event.aggregate, expected});
  }
  return append_batch(batch);
}

AppendResult Store::append_batch(const Batch& batch) {
  refuse_if_read_only(read_only_handle_, impl_->path());
  return std::move(impl_->append({batch}, false).front());
}

AppendResult Store::append_batch(const std::vector<EventData>& events,
                                 const std::vector<AggregateExpectation>& expectations) {
  return append_batch(Batch{events, expectations});
}

std::vector<AppendResult> Store::append_batches(const std::vector<Batch>& batches) {
  refuse_if_read_only(read_only_handle_, impl_->path());
  if (batches.empty()) return {};
  return impl_->append(batches, false);
}

RecordedEvent Store::get(const EventId& id) const { return impl_->get(id); }

StoreStats Store::stats() const {
  StoreStats s = impl_->stats();
  s.read_only = s.read_only || read_only_handle_;
  return s;
}

const std::filesystem::path& Store::path() const noexcept { return impl_->path(); }
const Options& Store::options() const noexcept { return impl_->options(); }

void Store::close() {
  if (impl_) impl_->shutdown();
}

}  // namespace lighthouse
