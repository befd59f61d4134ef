#include <catch2/catch.hpp>

#include <zlib.h>

#include <fstream>
#include <iterator>

#include "archive/manifest.h"
#include "archive/segment_file.h"
#include "lighthouse/lighthouse.h"
#include "support/events.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using namespace lighthouse::testing;
namespace fs = std::filesystem;

namespace {

std::vector<EventId> fill(Store& store, int n, int offset = 0) {
  std::vector<EventId> ids;
  for (int i = 0; i < n; ++i) {
    EventData e = event(i % 3 ? "Shipped" : "Placed", "order-" + std::to_string((i + offset) % 17),
                        "payload " + std::to_string(i + offset) + std::string(100, 'p'));
    e.metadata = {{"source", "test"}, {"n", std::to_string(i)}};
    if (i % 7 == 0) e.idempotency_key = "key-" + std::to_string(i + offset);
    ids.push_back(store.append(std::move(e)).events[0].id);
  }
  return ids;
}

std::vector<RecordedEvent> all(const Store& store) {
  std::vector<RecordedEvent> out;
  for (const auto& e : store.query({})) out.push_back(e);
  return out;
}

void same_history(const Store& a, const Store& b) {
  auto x = all(a), y = all(b);
  REQUIRE(x.size() == y.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK(x[i].id == y[i].id);
    CHECK(x[i].checksum == y[i].checksum);
    CHECK(x[i].chain == y[i].chain);
    CHECK(x[i].data == y[i].data);
    CHECK(x[i].metadata == y[i].metadata);
    CHECK(x[i].idempotency_key == y[i].idempotency_key);
  }
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string gunzip(const std::string& in) {
  z_stream z{};
  inflateInit2(&z, 16 + MAX_WBITS);
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  char buf[65536];
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    int rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
    if (rc == Z_STREAM_END) {
      if (z.avail_in == 0) break;
      inflateReset(&z);
    } else if (rc != Z_OK) {
      break;
    }
  }
  inflateEnd(&z);
  return out;
}

std::string gzip(const std::string& in) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, static_cast<uLong>(in.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Replaces segment `index`'s file with `bytes` and makes the manifest agree
// with the file (size and hash), so that only the records can be wrong.
void replace_segment(const fs::path& dir, std::size_t index, const std::string& bytes) {
  auto m = archive::load_manifest(dir);
  write_file(dir / m.segments[index].file, bytes);
  m.segments[index].compressed_bytes = bytes.size();
  m.segments[index].sha256 = to_hex(archive::file_sha256(dir / m.segments[index].file));
  archive::store_manifest(dir, m);
}

std::string problems(const ArchiveVerifyReport& r) {
  std::string out;
  for (const auto& p : r.problems) out += p.file + ": " + p.detail + "\n";
  return out;
}

struct Exported {
  TempDir tmp;
  fs::path store_path = tmp / "store";
  fs::path dir = tmp / "archive";
  std::vector<EventId> ids;
  Exported(int n = 300, std::uint64_t segment_bytes = 8 * 1024) {
    Store store = Store::open(store_path);
    ids = fill(store, n);
    ExportOptions options;
    options.segment_bytes = segment_bytes;
    export_archive(store, dir, options);
  }
};

}  // namespace

TEST_CASE("export then import rebuilds the store identically", "[archive]") {
  Exported x;
  auto m = read_manifest(x.dir);
  CHECK(m.segments.size() > 3);  // rotated at the small segment size
  for (const auto& s : m.segments) CHECK(s.record_bytes <= 8 * 1024);
  CHECK(m.last_sequence == 300);
  auto report = verify_archive(x.dir);
  INFO(problems(report));
  CHECK(report.ok());
  CHECK(report.events == 300);
  Store copy = Store::open(x.tmp / "copy");
  auto imported = import_archive(x.dir, copy);
  CHECK(imported.events == 300);
  CHECK(copy.verify().ok());
  Store original = Store::open(x.store_path);
  same_history(original, copy);
  // Indexes were rebuilt too: the same queries answer the same.
  Query q;
  q.aggregate = "order-3";
  std::vector<EventId> a, b;
  for (const auto& e : original.query(q)) a.push_back(e.id);
  for (const auto& e : copy.query(q)) b.push_back(e.id);
  CHECK(a == b);
  // Idempotency survives the trip.
  EventData retry = event("Placed", "order-0", "payload 0" + std::string(100, 'p'));
  retry.metadata = {{"source", "test"}, {"n", "0"}};
  retry.idempotency_key = "key-0";
  auto r = copy.append(retry);
  CHECK(r.replayed);
  CHECK(r.events[0].id == x.ids[0]);
}

TEST_CASE("export is incremental and never rewrites a segment", "[archive]") {
  Exported x(120);
  auto first = read_manifest(x.dir);
  std::map<std::string, std::string> hashes;
  for (const auto& s : first.segments) hashes[s.file] = to_hex(archive::file_sha256(x.dir / s.file));
  {
    Store store = Store::open(x.store_path);
    fill(store, 80, 1000);
    ExportOptions options;
    options.segment_bytes = 8 * 1024;
    auto report = export_archive(store, x.dir, options);
    CHECK(report.events == 80);
    auto again = export_archive(store, x.dir, options);  // nothing new
    CHECK(again.events == 0);
    CHECK(again.segments == 0);
  }
  auto second = read_manifest(x.dir);
  CHECK(second.last_sequence == 200);
  for (const auto& [file, hash] : hashes) CHECK(to_hex(archive::file_sha256(x.dir / file)) == hash);
  CHECK(verify_archive(x.dir).ok());
  Store copy = Store::open(x.tmp / "copy");
  CHECK(import_archive(x.dir, copy).events == 200);
  CHECK(copy.verify().ok());
}

TEST_CASE("import up to an ID restores a point in time", "[archive]") {
  Exported x;
  Store copy = Store::open(x.tmp / "copy");
  ImportOptions options;
  options.until = x.ids[149];
  auto report = import_archive(x.dir, copy, options);
  CHECK(report.events == 150);
  CHECK(report.last == x.ids[149]);
  CHECK(copy.stats().last_sequence == 150);
  CHECK(copy.verify().ok());
  // The rest continues it exactly.
  CHECK(import_archive(x.dir, copy).events == 150);
  CHECK(copy.stats().last_sequence == 300);
  CHECK(copy.verify().ok());
}

TEST_CASE("import into a store it does not continue is refused", "[archive]") {
  Exported x;
  Store other = Store::open(x.tmp / "other");
  other.append(event("Foreign"));
  auto before = other.stats();
  CHECK(error_code_of([&] { import_archive(x.dir, other); }) == ErrorCode::invalid_argument);
  CHECK(other.stats().event_count == before.event_count);
  CHECK(other.verify().ok());
}

TEST_CASE("damaged archives are refused with clear errors and nothing imported past the damage",
          "[archive][corruption]") {
  Exported x;
  auto m = archive::load_manifest(x.dir);
  const fs::path seg1 = x.dir / m.segments[1].file;
  std::string expected_file;
  SECTION("truncated gzip") {
    std::string bytes = read_file(seg1);
    replace_segment(x.dir, 1, bytes.substr(0, bytes.size() / 2));
    expected_file = m.segments[1].file;
  }
  SECTION("a flipped byte in the compressed data") {
    std::string bytes = read_file(seg1);
    bytes[bytes.size() / 2] ^= 0x40;
    write_file(seg1, bytes);  // the manifest's hash no longer matches
    expected_file = m.segments[1].file;
  }
  SECTION("a flipped byte in the uncompressed records") {
    std::string raw = gunzip(read_file(seg1));
    raw[raw.size() / 2] ^= 0x01;
    replace_segment(x.dir, 1, gzip(raw));
    expected_file = m.segments[1].file;
  }
  SECTION("a length prefix over the maximum record size") {
    std::string raw = gunzip(read_file(seg1));
    raw[0] = '\x7f';  // the first record claims ~2 GiB
    replace_segment(x.dir, 1, gzip(raw));
    expected_file = m.segments[1].file;
  }
  SECTION("a record that is not MessagePack") {
    std::string raw = gunzip(read_file(seg1));
    std::uint32_t n = (static_cast<unsigned char>(raw[0]) << 24) | (static_cast<unsigned char>(raw[1]) << 16) |
                      (static_cast<unsigned char>(raw[2]) << 8) | static_cast<unsigned char>(raw[3]);
    std::fill(raw.begin() + 4, raw.begin() + 4 + n, '\xc1');  // 0xc1 is never used
    replace_segment(x.dir, 1, gzip(raw));
    expected_file = m.segments[1].file;
  }
  SECTION("a record that lacks a field") {
    std::string raw = gunzip(read_file(seg1));
    auto at = raw.find("\xa8" "checksum");
    REQUIRE(at != std::string::npos);
    raw[at + 1] = 'X';  // "Xhecksum": an unknown field, and checksum missing
    replace_segment(x.dir, 1, gzip(raw));
    expected_file = m.segments[1].file;
  }
  SECTION("a missing segment") {
    fs::remove(seg1);
    expected_file = m.segments[1].file;
  }
  SECTION("a renamed segment") {
    fs::rename(seg1, x.dir / "events-renamed.msgpack.gz");
    expected_file = m.segments[1].file;
  }
  SECTION("reordered segments") {
    std::swap(m.segments[1], m.segments[2]);
    archive::store_manifest(x.dir, m);
    expected_file = m.segments[1].file;
  }
  SECTION("a manifest that disagrees with the files") {
    m.segments[1].count += 1;
    archive::store_manifest(x.dir, m);
    expected_file = m.segments[1].file;
  }
  auto report = verify_archive(x.dir);
  INFO(problems(report));
  CHECK_FALSE(report.ok());
  REQUIRE_FALSE(report.problems.empty());
  CHECK(report.problems.front().file == expected_file);
  Store copy = Store::open(x.tmp / "copy");
  CHECK(error_code_of([&] { import_archive(x.dir, copy); }) == ErrorCode::corruption);
  // The whole archive is checked before anything is written: nothing changed.
  CHECK(copy.stats().event_count == 0);
  copy.close();
  CHECK(Store::open(x.tmp / "copy").verify().ok());
}

TEST_CASE("a manifest naming a file outside the archive is refused", "[archive][corruption]") {
  Exported x(50);
  std::string text = read_file(x.dir / "manifest.json");
  auto m = archive::load_manifest(x.dir);
  auto at = text.find(m.segments[0].file);
  text.replace(at, m.segments[0].file.size(), "../../etc/passwd");
  write_file(x.dir / "manifest.json", text);
  CHECK(error_code_of([&] { verify_archive(x.dir); }) == ErrorCode::corruption);
  CHECK(error_code_of([&] { read_manifest(x.dir); }) == ErrorCode::corruption);
  write_file(x.dir / "manifest.json", "{not json");
  CHECK(error_code_of([&] { read_manifest(x.dir); }) == ErrorCode::corruption);
  fs::remove(x.dir / "manifest.json");
  CHECK(error_code_of([&] { read_manifest(x.dir); }) == ErrorCode::not_found);
}

TEST_CASE("leftovers of an interrupted export are warnings, removed by the next export",
          "[archive]") {
  Exported x(100);
  write_file(x.dir / ".tmp-events-00000000000000000101-00000000000000000101.msgpack.gz", "partial");
  write_file(x.dir / "events-00000000000000000101-00000000000000000150.msgpack.gz", "orphan");
  write_file(x.dir / "notes.txt", "the operator's own file");
  auto report = verify_archive(x.dir);
  CHECK(report.ok());
  CHECK(report.leftovers.size() == 2);
  Store store = Store::open(x.store_path);
  fill(store, 10, 500);
  auto exported = export_archive(store, x.dir);
  CHECK(exported.removed_leftovers.size() == 2);
  CHECK(exported.events == 10);
  CHECK(fs::exists(x.dir / "notes.txt"));
  auto after = verify_archive(x.dir);
  CHECK(after.ok());
  CHECK(after.leftovers.empty());
  CHECK(after.events == 110);
}

TEST_CASE("export refuses bad options, foreign archives and unwritable places", "[archive]") {
  Exported x(20);
  Store store = Store::open(x.store_path);
  ExportOptions tiny;
  tiny.segment_bytes = 10;
  CHECK(error_code_of([&] { export_archive(store, x.tmp / "a2", tiny); }) == ErrorCode::invalid_argument);
  ExportOptions level;
  level.level = 13;
  CHECK(error_code_of([&] { export_archive(store, x.tmp / "a2", level); }) == ErrorCode::invalid_argument);
  write_file(x.tmp / "a-file", "x");
  CHECK(error_code_of([&] { export_archive(store, x.tmp / "a-file" / "sub"); }) == ErrorCode::io_error);
  Store other = Store::open(x.tmp / "other");
  fill(other, 30);
  CHECK(error_code_of([&] { export_archive(other, x.dir); }) == ErrorCode::invalid_argument);
  CHECK(verify_archive(x.dir).ok());
}

TEST_CASE("manifest numbers that are floats, negative or out of range are corruption, not undefined behaviour",
          "[archive][regression]") {
  // Found by fuzz_archive: a float where an unsigned field belongs was
  // converted with undefined behaviour (UBSan: 2.98744e+85 outside unsigned int).
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append(testing::event("E"));
  export_archive(store, dir / "archive");
  std::string text;
  {
    std::ifstream in(dir / "archive" / "manifest.json");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"\"version\": 2", "\"version\": 2.98744e+85"},
           {"\"version\": 2", "\"version\": -1"},
           {"\"node_id\": ", "\"node_id\": 99999999999, \"x\": "},
           {"\"segment_bytes\": ", "\"segment_bytes\": 1.5, \"y\": "}}) {
    std::string damaged = text;
    const auto at = damaged.find(from);
    REQUIRE(at != std::string::npos);
    damaged.replace(at, from.size(), to);
    {
      std::ofstream out(dir / "archive" / "manifest.json", std::ios::trunc);
      out << damaged;
    }
    INFO(to);
    CHECK(testing::error_code_of([&] { read_manifest(dir / "archive"); }) == ErrorCode::corruption);
  }
}
