#include "lighthouse/lighthouse.h"
#include "system.h"

namespace compare {
namespace {

lighthouse::EventData to_event(BenchEvent e) {
  lighthouse::EventData out;
  out.type = std::move(e.type);
  out.aggregate = std::move(e.aggregate);
  out.content_type = lighthouse::ContentType::bytes;
  out.data = std::move(e.data);
  return out;
}

// Events materialised with their data, as the other systems count them.
std::uint64_t count(lighthouse::EventCursor cursor) {
  std::uint64_t n = 0;
  for (const auto& e : cursor) n += e.data.empty() ? 0 : 1;
  return n;
}

lighthouse::tracing::TracingOptions tracing_options;

class LighthouseSystem : public System {
 public:
  explicit LighthouseSystem(bool traced) : traced_(traced) {}
  std::string name() const override { return traced_ ? "lighthouse-traced" : "lighthouse"; }
  void open(const std::filesystem::path& dir) override {
    lighthouse::Options options;
    if (traced_) options.tracing = tracing_options;
    store_ = std::make_unique<lighthouse::Store>(lighthouse::Store::open(dir, options));
  }
  void close() override { store_.reset(); }
  std::uint64_t commits() const override { return store_->stats().commits; }
  void append_batch(const std::vector<BenchEvent>& events) override {
    std::vector<lighthouse::EventData> batch;
    batch.reserve(events.size());
    for (const auto& e : events) batch.push_back(to_event(e));
    store_->append_batch(std::move(batch));
  }
  void append_one(const BenchEvent& event) override { store_->append(to_event(event)); }
  Ticket append_async(BenchEvent event) override {
    return {{}, store_->append_async(to_event(std::move(event)))};
  }
  static lighthouse::ReadCheck read_check(Checks checks) {
    return checks == Checks::on     ? lighthouse::ReadCheck::fast
           : checks == Checks::full ? lighthouse::ReadCheck::full
                                    : lighthouse::ReadCheck::off;
  }
  std::uint64_t query_type(const std::string& type, Checks checks) override {
    lighthouse::Query q;
    q.types = {type};
    q.verify_on_read = read_check(checks);
    return count(store_->query(q));
  }
  std::uint64_t read_aggregate(const std::string& aggregate, Checks checks) override {
    // The default, Store::read_aggregate, checks as Options::verify_on_read
    // says (fast).
    if (checks == Checks::on) return count(store_->read_aggregate(aggregate));
    lighthouse::Query q;
    q.aggregate = aggregate;
    q.verify_on_read = read_check(checks);
    return count(store_->query(q));
  }
  std::uint64_t scan_all(const std::function<void()>& progress) override {
    std::uint64_t n = 0;
    // The store's own events (a `$health.*` transition when a batch's latency
    // crossed the SLA target during the run) are read but not counted.
    for (const auto& e : store_->query({})) {
      if (!e.data.empty() && e.type.front() != '$' && ++n % 10'000 == 0) progress();
    }
    return n;
  }

 private:
  bool traced_;
  std::unique_ptr<lighthouse::Store> store_;
};

}  // namespace

std::unique_ptr<System> make_lighthouse(bool traced) { return std::make_unique<LighthouseSystem>(traced); }

void set_lighthouse_tracing(std::shared_ptr<lighthouse::tracing::SpanSink> sink, double ratio) {
  tracing_options.sink = std::move(sink);
  tracing_options.sampler = {lighthouse::tracing::SamplerKind::parent_based_trace_id_ratio, ratio};
}

}  // namespace compare
