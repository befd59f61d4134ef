// Options of a store opened more than once in a process, and options that
// switch parts of the store off.
#include <catch2/catch.hpp>

#include "lighthouse/lighthouse.h"
#include "support/events.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using lighthouse::testing::error_code_of;
using lighthouse::testing::event;
using lighthouse::testing::TempDir;

TEST_CASE("a second open of a store this process has open gets the first open's options", "[options]") {
  TempDir dir;
  Options first;
  first.limits.max_event_bytes = 100;
  first.node_id = 7;
  Store a = Store::open(dir / "store", first);
  Options second;
  second.limits.max_event_bytes = 10'000;
  second.node_id = 9;
  second.durability = Durability::no_meta_sync;
  Store b = Store::open(dir / "store", second);
  CHECK(b.options().limits.max_event_bytes == 100);
  CHECK(b.options().node_id == 7u);
  CHECK(b.options().durability == Durability::sync);
  // The first open's limits and node id govern what the second handle writes.
  CHECK(error_code_of([&] { b.append(event("T", "", std::string(500, 'd'))); }) == ErrorCode::limit_exceeded);
  CHECK(b.append(event("T")).events[0].id.node_id == 7u);
  CHECK(b.stats().node_id == 7u);
  // read_only aside: it makes that handle read-only, the others keep writing.
  Options ro = second;
  ro.read_only = true;
  Store c = Store::open(dir / "store", ro);
  CHECK(error_code_of([&] { c.append(event("T")); }) == ErrorCode::read_only);
  CHECK(c.stats().read_only);
  CHECK(a.append(event("T")).events.size() == 1);
  CHECK(c.stats().event_count == 2);
}
