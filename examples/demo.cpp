// lighthouse-demo: a realistic event stream on an embedded store.
//
// Opens (or creates) a store, appends an order-processing stream for a few
// aggregates with optimistic concurrency, retries an append idempotently,
// shows a conflict being refused, reads everything back with each record's fast check
// verified, queries by type and by aggregate, verifies the whole store, and
// says what it did and how long each step took.
//
// Usage: lighthouse-demo [STORE_DIR]   (default: ./lighthouse-demo-store)
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "lighthouse/lighthouse.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

lighthouse::EventData json_event(std::string type, std::string aggregate, std::string json) {
  lighthouse::EventData e;
  e.type = std::move(type);
  e.aggregate = std::move(aggregate);
  e.content_type = lighthouse::ContentType::json;
  e.data = std::move(json);
  e.metadata = {{"source", "lighthouse-demo"}};
  return e;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string path = argc > 1 ? argv[1] : "lighthouse-demo-store";
  auto start = Clock::now();
  lighthouse::Store store = lighthouse::Store::open(path);
  auto before = store.stats();
  if (before.format_version < lighthouse::kFormatVersion) {
    // A store an older Lighthouse wrote opens read-only: rewrite it first.
    store.close();
    const auto upgraded = lighthouse::Store::upgrade(path);
    std::printf("upgraded store '%s' from format %u to %u (%llu events, %.1f ms)\n", path.c_str(),
                upgraded.from_format, upgraded.to_format, static_cast<unsigned long long>(upgraded.events),
                upgraded.seconds * 1000);
    store = lighthouse::Store::open(path);
    before = store.stats();
  }
  std::printf("opened store '%s' in %.2f ms: %llu events already, node id %u\n",
              store.path().c_str(), ms_since(start),
              static_cast<unsigned long long>(before.event_count), before.node_id);

  // A stream per order: placed, items added, paid, shipped — each append
  // states the version it expects, as a command handler would.
  const int kOrders = 200;
  const std::string run = std::to_string(before.last_sequence);
  std::vector<lighthouse::EventId> ids;
  start = Clock::now();
  for (int o = 0; o < kOrders; ++o) {
    const std::string order = "order-" + run + "-" + std::to_string(o);
    std::uint64_t version = 0;
    auto append = [&](const std::string& type, const std::string& json) {
      auto r = store.append(json_event(type, order, json),
                            lighthouse::ExpectedVersion::exact(version));
      version = r.events[0].aggregate_version;
      ids.push_back(r.events[0].id);
    };
    append("OrderPlaced", R"({"customer":"c-)" + std::to_string(o % 17) + R"("})");
    for (int item = 0; item < 1 + o % 4; ++item) {
      append("ItemAdded", R"({"sku":"sku-)" + std::to_string(item * 31 % 97) + R"(","qty":)" +
                              std::to_string(1 + item) + "}");
    }
    append("PaymentReceived", R"({"amount_cents":)" + std::to_string(1999 + o * 10) + "}");
    append("OrderShipped", R"({"carrier":"post"})");
  }
  double single_ms = ms_since(start);
  std::printf("appended %zu events one by one (durable, expected versions) in %.1f ms: %.0f events/s\n",
              ids.size(), single_ms, ids.size() / (single_ms / 1000));

  // An atomic batch across two aggregates: stock moves between warehouses.
  start = Clock::now();
  lighthouse::Batch transfer;
  for (int i = 0; i < 500; ++i) {
    transfer.events.push_back(json_event("StockMoved", "warehouse-north-" + run,
                                         R"({"sku":"sku-)" + std::to_string(i) + R"(","qty":-1})"));
    transfer.events.push_back(json_event("StockMoved", "warehouse-south-" + run,
                                         R"({"sku":"sku-)" + std::to_string(i) + R"(","qty":1})"));
  }
  transfer.expectations = {{"warehouse-north-" + run, lighthouse::ExpectedVersion::no_stream()},
                           {"warehouse-south-" + run, lighthouse::ExpectedVersion::no_stream()}};
  auto batch = store.append_batch(transfer);
  std::printf("appended one atomic batch of %zu events over 2 aggregates in %.1f ms\n",
              batch.events.size(), ms_since(start));

  // An idempotent retry returns the original ID instead of a duplicate.
  auto payment = json_event("RefundIssued", "order-" + run + "-0", R"({"amount_cents":1999})");
  payment.idempotency_key = "refund-" + run + "-0";
  // Version 2 of the event's schema, appended inside a trace: both are
  // stored with the event (the trace context is not compared on a retry).
  payment.schema_version = 2;
  payment.trace_context = lighthouse::TraceContext{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "demo=1"};
  auto first = store.append(payment);
  auto retry = store.append(payment);
  std::printf("idempotent retry: first %s, retry %s (replayed: %s)\n",
              first.events[0].id.to_string().c_str(), retry.events[0].id.to_string().c_str(),
              retry.replayed ? "yes" : "no");

  // A stale writer is refused and writes nothing.
  try {
    store.append(json_event("OrderCancelled", "order-" + run + "-1", "{}"),
                 lighthouse::ExpectedVersion::exact(1));
  } catch (const lighthouse::Error& e) {
    std::printf("stale append refused (%s): %s\n", std::string(lighthouse::to_string(e.code())).c_str(),
                e.what());
  }

  // Read every event of this run back, each record's fast check verified (Options::verify_on_read).
  start = Clock::now();
  std::size_t bytes = 0;
  for (const auto& id : ids) bytes += store.get(id).data.size();
  double read_ms = ms_since(start);
  auto sample = store.get(ids[1]);
  std::printf("read back %zu events (%zu data bytes, fast checks verified) in %.1f ms\n", ids.size(),
              bytes, read_ms);
  std::printf("sample: %s %s v%llu %s checksum %s\n", sample.id.to_string().c_str(),
              sample.type.c_str(), static_cast<unsigned long long>(sample.aggregate_version),
              sample.data.c_str(), lighthouse::to_hex(sample.checksum).substr(0, 16).c_str());

  // Queries by secondary index stream through a cursor.
  start = Clock::now();
  lighthouse::Query payments;
  payments.types = {"PaymentReceived"};
  std::size_t paid = 0;
  for (const auto& e : store.query(payments)) paid += e.type == "PaymentReceived";
  std::printf("query by type PaymentReceived: %zu events via %s in %.2f ms\n", paid,
              store.explain(payments).description.c_str(), ms_since(start));
  start = Clock::now();
  std::string stream;
  for (const auto& e : store.read_aggregate("order-" + run + "-3")) {
    stream += (stream.empty() ? "" : " -> ") + e.type;
  }
  std::printf("read_aggregate order-%s-3: %s (%.2f ms)\n", run.c_str(), stream.c_str(), ms_since(start));

  // A subscription follows the store: here a live one on shipments, woken
  // by the commits of this process (other processes': within 50 ms).
  std::mutex mutex;
  std::condition_variable delivered;
  std::size_t shipped = 0;
  lighthouse::Query shipments;
  shipments.types = {"OrderShipped"};
  auto subscription = store.subscribe(shipments, lighthouse::SubscriptionStart::now(),
                                      [&](const lighthouse::RecordedEvent&) {
                                        std::lock_guard lock(mutex);
                                        ++shipped;
                                        delivered.notify_all();
                                      });
  start = Clock::now();
  for (int i = 0; i < 3; ++i) {
    lighthouse::EventData e;
    e.type = "OrderShipped";
    e.aggregate = "order-" + run + "-" + std::to_string(100 + i);
    e.content_type = lighthouse::ContentType::json;
    e.data = R"({"carrier":"demo"})";
    store.append(std::move(e));
  }
  {
    std::unique_lock lock(mutex);
    delivered.wait_for(lock, std::chrono::seconds(10), [&] { return shipped == 3; });
  }
  std::printf("subscription: %zu live OrderShipped events delivered within %.2f ms of the first append\n", shipped,
              ms_since(start));
  subscription.cancel();

  const auto health = store.health();
  std::printf("health: %s%s%s\n", std::string(lighthouse::to_string(health.state)).c_str(),
              health.reason.empty() ? "" : " — ", health.reason.c_str());

  start = Clock::now();
  auto report = store.verify();
  std::printf("verify: %s, %llu events and %llu index entries checked in %.1f ms\n",
              report.ok() ? "clean" : "PROBLEMS FOUND",
              static_cast<unsigned long long>(report.events_checked),
              static_cast<unsigned long long>(report.index_entries_checked), ms_since(start));

  auto after = store.stats();
  std::printf("store now holds %llu events in %llu aggregates, last sequence %llu, %.1f MiB used\n",
              static_cast<unsigned long long>(after.event_count),
              static_cast<unsigned long long>(after.aggregate_count),
              static_cast<unsigned long long>(after.last_sequence),
              after.map_used_bytes / 1048576.0);
  return 0;
} catch (const lighthouse::Error& e) {
  std::fprintf(stderr, "lighthouse-demo: %s\n", e.what());
  return 1;
}
