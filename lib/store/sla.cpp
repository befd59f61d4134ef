// The SLA monitor and Prometheus metrics of Store.
#include "lighthouse/store.h"
#include "monitor/prometheus.h"
#include "store/schema.h"
#include "store/store_impl.h"

namespace lighthouse {

namespace {
std::uint64_t readers_in_use(MDB_env* env) {
  MDB_envinfo info;
  if (mdb_env_info(env, &info) != MDB_SUCCESS) return 0;
  return info.me_numreaders;
}
}  // namespace

SlaReport Store::sla_report() const {
  auto lock = impl().use();
  if (!impl().monitor_) return {};
  SlaReport r = impl().monitor_->report();
  r.backlog = impl().committer_ ? impl().committer_->backlog() : 0;
  return r;
}

void Store::on_sla_breach(SlaBreachCallback callback) {
  auto lock = impl().use();
  if (impl().monitor_) impl().monitor_->on_breach(std::move(callback));
}

std::string Store::metrics_text() const {
  StoreStats s = stats();
  const HealthStatus status = health();
  auto lock = impl().use();
  monitor::MeasuresSnapshot measures;
  std::map<std::string, std::uint64_t> errors;
  if (impl().monitor_) {
    measures = impl().monitor_->since_open();
    errors = impl().monitor_->error_counts();
  }
  std::string text = monitor::prometheus_text(s, measures, errors, readers_in_use(impl().env_.get()), status);
  Store self(impl_, true);
  return text + impl().subscription_metrics(self);
}

std::string Store::persisted_sla() const {
  auto lock = impl().use();
  auto read = impl().begin_read();
  std::string_view json;
  if (!lmdb::get(read->txn.get(), impl().dbs_.meta, schema::meta::kSlaReport, json)) return "";
  return std::string(json);
}

std::string Store::persisted_metrics_text() const {
  StoreStats s = stats();
  monitor::MeasuresSnapshot measures;
  std::map<std::string, std::uint64_t> errors;
  const std::string json = persisted_sla();
  if (!json.empty()) monitor::parse_measures_json(json, measures, errors);
  const HealthStatus status = health();
  auto lock = impl().use();
  return monitor::prometheus_text(s, measures, errors, readers_in_use(impl().env_.get()), status);
}

}  // namespace lighthouse
