#include "tool_tracing.h"
#include "store_commands.h"
#include "output.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "json_event.h"

namespace lighthouse::tool {
namespace {

bool store_exists(const std::string& path) {
  try {
    open_existing(path, true);  // closed again at once, before init opens it for writing
    return true;
  } catch (const Error& error) {
    if (error.code() == ErrorCode::not_found) return false;
    throw;
  }
}

}  // namespace

namespace {
bool check_structure = false;
double quorum_timeout = Options{}.quorum_timeout_seconds;
}  // namespace

void set_quorum_timeout(double seconds) { quorum_timeout = seconds; }

void check_structure_on_open(bool on) { check_structure = on; }
bool structure_check_requested() { return check_structure; }

Store open_existing(const std::string& path, bool read_only) {
  Options options;
  options.tracing = tool_tracing().options();
  options.create_if_missing = false;
  options.read_only = read_only;
  options.check_structure_on_open = check_structure;
  options.quorum_timeout_seconds = quorum_timeout;
  return Store::open(path, options);
}

void run_init(const std::string& path, std::optional<std::uint32_t> node_id, std::ostream& out) {
  if (store_exists(path)) throw std::runtime_error("a store already exists at '" + path + "'");
  Options options;
  options.tracing = tool_tracing().options();
  options.create_if_missing = true;
  options.node_id = node_id;
  Store store = Store::open(path, options);
  StoreStats stats = store.stats();
  Json line;
  line["store"] = store.path().string();
  line["node_id"] = stats.node_id;
  line["format_version"] = stats.format_version;
  print_line(out, dump(line));
}

void run_get(const std::string& path, const std::string& id_text, std::ostream& out) {
  const EventId id = EventId::parse(id_text);
  Store store = open_existing(path, true);
  print_line(out, recorded_event_json(store.get(id)));
}

void run_stats(const std::string& path, std::ostream& out) {
  Store store = open_existing(path, true);
  print_line(out, stats_json(store.stats()));
}

}  // namespace lighthouse::tool
