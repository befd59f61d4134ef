#include <catch2/catch.hpp>

#include <functional>
#include <random>

#include "codec/record.h"
#include "codec/record_internal.h"
#include "support/allocation_meter.h"
#include "support/events.h"
#include "codec/sha256.h"
#include "lighthouse/lighthouse.h"

using namespace lighthouse;

namespace {

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}

RecordedEvent sample() {
  RecordedEvent e;
  e.id = EventId{1, 2, 3};
  e.type = "T";
  e.aggregate = "";
  e.aggregate_version = 1;
  e.content_type = ContentType::msgpack;
  e.metadata = {{"k", "v"}};
  e.data = std::string("\x01\x02", 2);
  e.checksum = codec::event_checksum(e);
  e.chain = codec::chain_next(Sha256{}, e.checksum);
  return e;
}

RecordedEvent sample_v1() {
  RecordedEvent e = sample();
  e.record_format = 1;
  e.checksum = codec::event_checksum(e);
  e.chain = codec::chain_next(Sha256{}, e.checksum);
  return e;
}

std::string canonical_v1(const RecordedEvent& e) {
  std::string out;
  codec::append_canonical_v1(out, e.id, codec::RecordFields::of(e));
  return out;
}

std::string digest_bytes(const Sha256& d) { return std::string(reinterpret_cast<const char*>(d.data()), d.size()); }

}  // namespace

TEST_CASE("format 1: the canonical encoding matches docs/formats.md byte for byte", "[record]") {
  RecordedEvent e = sample_v1();
  std::string canonical = canonical_v1(e);
  CHECK(hex(canonical) == "97a5315f325f33a154a0010081a16ba176c4020102");
  CHECK(codec::event_checksum(e) == codec::sha256(canonical));
}

TEST_CASE("SHA-256 matches the standard test vector", "[record]") {
  CHECK(to_hex(codec::sha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("metadata is encoded sorted bytewise whatever the insertion order", "[record]") {
  RecordedEvent a = sample_v1();
  a.metadata = {{"b", "2"}, {"a", "1"}, {"\xc3\xa9", "3"}};
  RecordedEvent b = sample_v1();
  b.metadata.clear();
  b.metadata["\xc3\xa9"] = "3";
  b.metadata["a"] = "1";
  b.metadata["b"] = "2";
  CHECK(codec::event_checksum(a) == codec::event_checksum(b));
  std::string canonical = canonical_v1(a);
  CHECK(hex(canonical).find("83a161a131a162a132a2c3a9a133") != std::string::npos);
}

TEST_CASE("records round-trip in both formats, compressed or not", "[record]") {
  RecordedEvent e = sample();
  e.idempotency_key = "key";
  e.schema_version = 7;
  e.trace_context = TraceContext{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "congo=t61rcWkgMzE"};
  for (std::uint8_t format : {std::uint8_t{1}, std::uint8_t{2}})
  for (std::size_t threshold : {std::size_t{0}, std::size_t{1}}) {
    INFO("format " << int(format) << ", threshold " << threshold);
    e.record_format = format;
    if (format == 1) {
      e.schema_version = 1;
      e.trace_context.reset();
    }
    e.data = std::string(10'000, 'x');
    e.checksum = codec::event_checksum(e);
    std::string bytes = codec::encode_record(e, {threshold, 3});
    if (threshold != 0) CHECK(bytes.size() < 1000);
    RecordedEvent back = codec::decode_record(e.id, bytes);
    CHECK(back.data == e.data);
    CHECK(back.metadata == e.metadata);
    CHECK(back.idempotency_key == e.idempotency_key);
    CHECK(back.checksum == e.checksum);
    CHECK(back.chain == e.chain);
    CHECK(back.schema_version == e.schema_version);
    CHECK(back.trace_context == e.trace_context);
    CHECK(int(back.record_format) == int(format));
    CHECK_NOTHROW(codec::verify_checksum(back));
    CHECK_NOTHROW(codec::read_record(e.id, bytes, ReadCheck::full));
  }
}

TEST_CASE("format 1: checksums hashed from the stored bytes equal those of the canonical encoding", "[record]") {
  // Reads and seal_record hash a record's own bytes (fields 2..7) behind the
  // ID instead of re-encoding: for every shape of event they must give the
  // checksum docs/formats.md defines.
  std::vector<RecordedEvent> shapes;
  shapes.push_back(sample_v1());
  RecordedEvent e = sample_v1();
  e.id = EventId{1'790'000'000'123'456'789ULL, 123'456'789'012ULL, 4'000'000'000U};  // ID text >= 32 bytes
  e.aggregate = std::string(300, 'a');  // str16 header
  e.aggregate_version = 70'000;         // uint32
  e.metadata = {{"z", std::string(40, 'v')}, {"a", "1"}};
  e.data = std::string(70'000, 'd');  // bin32 header
  e.idempotency_key = "key";
  e.content_type = ContentType::json;
  shapes.push_back(e);
  e.metadata.clear();
  e.data.clear();
  e.aggregate.clear();
  e.aggregate_version = 0;
  shapes.push_back(e);
  for (RecordedEvent& shape : shapes) {
    INFO(shape.id.to_string());
    shape.checksum = codec::event_checksum(shape);
    std::string record = codec::encode_record(shape, {});
    std::string_view tail;
    RecordedEvent back = codec::decode_record(shape.id, record, &tail);
    REQUIRE_FALSE(tail.empty());
    CHECK(codec::internal::stored_checksum_v1(shape.id, tail) == codec::event_checksum(shape));
    CHECK(codec::checksum_matches(back, tail));
    // Compressed data has no stored canonical bytes: the tail is empty and the
    // checksum is computed from the decoded fields.
    if (shape.data.size() > 1000) {
      std::string compressed = codec::encode_record(shape, {1, 3});
      CHECK(compressed.size() < record.size());
      RecordedEvent back_z = codec::decode_record(shape.id, compressed, &tail);
      CHECK(tail.empty());
      CHECK(codec::checksum_matches(back_z, tail));
    }
  }
}

TEST_CASE("format 1: a valid record not in canonical form still verifies; a damaged one does not", "[record]") {
  // Hand-made record of sample(): the type "T" as a str8 (d9 01 54) instead of
  // a fixstr, so the stored bytes are not the canonical encoding; the checksum
  // is the canonical one.
  RecordedEvent e = sample_v1();
  std::string digest_bin = "\xc4\x20";
  std::string record = std::string("\x9b\x01\x00\xd9\x01T\xa0\x01\x00\x81\xa1k\xa1v\xc4\x02\x01\x02\xc0", 19) +
                       digest_bin + std::string(reinterpret_cast<const char*>(e.checksum.data()), 32) +
                       digest_bin + std::string(reinterpret_cast<const char*>(e.chain.data()), 32);
  std::string_view tail;
  RecordedEvent back = codec::decode_record(e.id, record, &tail);
  CHECK(back.type == "T");
  REQUIRE_FALSE(tail.empty());
  CHECK(codec::internal::stored_checksum_v1(e.id, tail) != e.checksum);  // the fast path misses...
  CHECK(codec::checksum_matches(back, tail));                // ...and the canonical one decides
  CHECK_NOTHROW(codec::verify_checksum(back, tail));
  // The same record with one data byte changed fails both ways.
  std::string damaged = record;
  damaged[17] = '\x03';
  RecordedEvent bad = codec::decode_record(e.id, damaged, &tail);
  CHECK_FALSE(codec::checksum_matches(bad, tail));
  CHECK_THROWS_AS(codec::verify_checksum(bad, tail), Error);
}

TEST_CASE("format 1: metadata stored out of order or twice is never verified from its stored bytes", "[record]") {
  // A crafted record whose checksum covers its own (non-canonical) bytes:
  // metadata {"k": "v", "a": "1"} unsorted. What is read (sorted) is not what
  // was hashed, so it must not verify.
  RecordedEvent e = sample_v1();
  const std::string tail_bytes("\xa1T\xa0\x01\x00\x82\xa1k\xa1v\xa1" "a\xa1" "1\xc4\x02\x01\x02", 18);
  const Sha256 crafted = codec::internal::stored_checksum_v1(e.id, tail_bytes);
  const std::string digest_bin = "\xc4\x20";
  const std::string record = std::string("\x9b\x01\x00", 3) + tail_bytes + std::string("\xc0", 1) + digest_bin +
                             std::string(reinterpret_cast<const char*>(crafted.data()), 32) + digest_bin +
                             std::string(32, '\0');
  std::string_view tail;
  RecordedEvent back = codec::decode_record(e.id, record, &tail);
  CHECK(back.metadata.size() == 2);
  CHECK(tail.empty());  // not canonical: no fast path
  CHECK_FALSE(codec::checksum_matches(back, tail));  // the canonical re-encoding decides
}

TEST_CASE("decoding damaged records raises corruption and never crashes", "[record]") {
  RecordedEvent e = sample();
  std::string good = codec::encode_record(e, {});
  std::mt19937 rng(7);
  int errors = 0;
  for (int round = 0; round < 20'000; ++round) {
    std::string bytes = good;
    int flips = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < flips; ++i) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
    try {
      if (round % 2 == 0) {
        codec::read_record(e.id, bytes, ReadCheck::fast);  // the fast check first
      } else {
        codec::verify_checksum(codec::decode_record(e.id, bytes));  // no fast check: the SHA-256 decides
      }
    } catch (const Error& error) {
      CHECK(error.code() == ErrorCode::corruption);
      ++errors;
    }
  }
  CHECK(errors > 15'000);
  // A length header claiming 4 GiB is refused without allocating it.
  std::string huge = good;
  CHECK_THROWS_AS(codec::decode_record(e.id, std::string("\xdd\xff\xff\xff\xff", 5)), Error);
  CHECK_THROWS_AS(codec::decode_record(e.id, std::string("\xc6\xff\xff\xff\xf0", 5)), Error);
}

TEST_CASE("a damaged record whose zstd header claims a huge size is corruption, never a huge allocation",
          "[record][regression]") {
  // Found by fuzz_record (an out-of-memory at 2 GiB): the decoder sized its
  // buffer from the frame header before decompressing anything.
  const std::string bytes(
      "\x9b\x01\x01\xa1\x63\xa3\x6f\x2d\x31\x02\x01\x80\xc4\x1c\x28\xb5\x2f\xfd\x83\x23\xc0\xc4\x20\xae"
      "\xb5\x79\x60\x7a\x16\x95\x00\x00\x58\x7b\x22\x62\x69\x67\x22\x3a\x22\x7a\x22\x7d\x01\x00\x6c\xd7"
      "\x83\x23\xc0\xc4\x20\xae\xb5\x79\xa5\x46\x81\xa1\xac\x22\x00\x00\x00\x00\x00\x00\x00\x8d\x2c",
      71);
  lighthouse::testing::AllocationMeter meter;
  CHECK(lighthouse::testing::error_code_of([&] { codec::decode_record(EventId{1, 1, 1}, bytes); }) ==
        ErrorCode::corruption);
  // The frame claims 2,053,142,965 bytes; decoding it costs a few KiB.
  INFO("peak allocation while decoding: " << meter.peak() << " bytes");
  CHECK(meter.peak() < 64 * 1024);
}

TEST_CASE("format 2: the checksum and the record match docs/formats.md byte for byte", "[record]") {
  const RecordedEvent e = sample();
  const codec::ContentHashes h = codec::content_hashes(codec::RecordFields::of(e));
  // The content hash: SHA-256 of [type, aggregate, content type, metadata, data].
  CHECK(h.content == codec::sha256(std::string("\x95\xa1T\xa0\x00\x81\xa1k\xa1v\xc4\x02\x01\x02", 14)));
  // No idempotency key, no trace context: SHA-256 of [nil, nil].
  CHECK(h.extras == codec::sha256(std::string("\x92\xc0\xc0", 3)));
  // The checksum: SHA-256 over 96 bytes.
  const std::string in = digest_bytes(h.content) + digest_bytes(h.extras) +
                         std::string("\0\0\0\0\0\0\0\x01" "\0\0\0\0\0\0\0\x02" "\0\0\0\x03", 20) +
                         std::string("\0\0\0\0\0\0\0\x01", 8) + std::string("\0\0\0\x01", 4);
  REQUIRE(in.size() == 96);
  CHECK(e.checksum == codec::sha256(in));
  CHECK(to_hex(e.checksum) == "479873176894ee428ec4e9757d30b885a99bccb84c606a45de931e0228aec511");
  const std::string record = codec::encode_record(e, {});
  CHECK(hex(record) ==
        "9d0200a154a0010081a16ba176c4020102c001c0c420479873176894ee428ec4e9757d30b885a99bccb84c606a45de931e0228aec511"
        "c420fc20cd85ee2e45ac126b5182d0a607c0c725f86220c8dfcb29b46d9639b3aa527b577cd336b10562");
}

TEST_CASE("format 2: the hashes of the appending thread give the record the committer would", "[record]") {
  RecordedEvent e = sample();
  e.idempotency_key = "k-1";
  e.trace_context = TraceContext{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", ""};
  const Sha256 previous = codec::sha256("previous");
  const codec::RecordFields fields = codec::RecordFields::of(e);
  const codec::ContentHashes hashes = codec::content_hashes(fields);
  std::string with;
  const auto a = codec::seal_record(with, e.id, fields, hashes, previous, {});
  // The same record made from the event's fields alone (as import writes one).
  RecordedEvent reference = e;
  reference.checksum = codec::event_checksum(e);
  reference.chain = codec::chain_next(previous, reference.checksum);
  CHECK(with == codec::encode_record(reference, {}));
  CHECK(a.checksum == reference.checksum);
  CHECK(a.chain == reference.chain);
  const RecordedEvent back = codec::read_record(e.id, with, ReadCheck::full);
  CHECK(back.chain == a.chain);
}

TEST_CASE("format 2: every field of an event is covered by its checksum", "[record]") {
  RecordedEvent base = sample();
  base.idempotency_key = "k";
  base.trace_context = TraceContext{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "a=b"};
  const Sha256 original = codec::event_checksum(base);
  const std::vector<std::pair<const char*, std::function<void(RecordedEvent&)>>> changes = {
      {"timestamp", [](RecordedEvent& e) { ++e.id.timestamp_ns; }},
      {"sequence", [](RecordedEvent& e) { ++e.id.sequence; }},
      {"node", [](RecordedEvent& e) { ++e.id.node_id; }},
      {"type", [](RecordedEvent& e) { e.type = "U"; }},
      {"aggregate", [](RecordedEvent& e) { e.aggregate = "a"; }},
      {"aggregate version", [](RecordedEvent& e) { ++e.aggregate_version; }},
      {"content type", [](RecordedEvent& e) { e.content_type = ContentType::json; }},
      {"metadata key", [](RecordedEvent& e) { e.metadata = {{"j", "v"}}; }},
      {"metadata value", [](RecordedEvent& e) { e.metadata = {{"k", "w"}}; }},
      {"data", [](RecordedEvent& e) { e.data[1] = 3; }},
      {"idempotency key", [](RecordedEvent& e) { e.idempotency_key = "l"; }},
      {"no idempotency key", [](RecordedEvent& e) { e.idempotency_key.reset(); }},
      {"schema version", [](RecordedEvent& e) { e.schema_version = 2; }},
      {"traceparent", [](RecordedEvent& e) { e.trace_context->traceparent[54] = '0'; }},
      {"tracestate", [](RecordedEvent& e) { e.trace_context->tracestate = "a=c"; }},
      {"no trace context", [](RecordedEvent& e) { e.trace_context.reset(); }},
  };
  for (const auto& [what, change] : changes) {
    INFO(what);
    RecordedEvent e = base;
    change(e);
    CHECK(codec::event_checksum(e) != original);
  }
}

TEST_CASE("format 2: a flipped byte anywhere in a record is detected on read", "[record]") {
  RecordedEvent e = sample();
  e.idempotency_key = "key";
  e.trace_context = TraceContext{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "a=b"};
  for (std::size_t threshold : {std::size_t{0}, std::size_t{1}}) {
    e.data = threshold == 0 ? std::string("\x01\x02", 2) : std::string(5000, 'z');
    e.checksum = codec::event_checksum(e);
    const std::string good = codec::encode_record(e, {threshold, 3});
    REQUIRE_NOTHROW(codec::read_record(e.id, good, ReadCheck::fast));
    for (std::size_t at = 0; at < good.size(); ++at) {
      for (unsigned char mask : {0x01, 0x80, 0xff}) {
        std::string bad = good;
        bad[at] = static_cast<char>(bad[at] ^ mask);
        INFO("threshold " << threshold << ", byte " << at << " of " << good.size() << ", xor " << int(mask));
        CHECK_FALSE(codec::fast_check_matches(e.id, bad));
        CHECK(lighthouse::testing::error_code_of([&] { codec::read_record(e.id, bad, ReadCheck::fast); }) ==
              ErrorCode::corruption);
        CHECK(lighthouse::testing::error_code_of([&] { codec::read_record(e.id, bad, ReadCheck::full); }) ==
              ErrorCode::corruption);
      }
    }
    // The same bytes under another event's key fail too: the check covers the key.
    CHECK_FALSE(codec::fast_check_matches(EventId{1, 3, 3}, good));
  }
}

namespace {

// A format-2 record with its packed part replaced, and its fast check made again.
std::string with_packed(const EventId& id, std::string packed) {
  const EventId::Key key = id.to_key();
  const std::uint64_t check = codec::fast_check({reinterpret_cast<const char*>(key.data()), key.size()}, packed);
  for (int shift = 56; shift >= 0; shift -= 8) packed.push_back(static_cast<char>(check >> shift & 0xff));
  return packed;
}

}  // namespace

TEST_CASE("format 2: a traceparent is stored in its 25 bytes; one stored as text still reads and verifies",
          "[record]") {
  RecordedEvent e = sample();
  const std::string parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  e.trace_context = TraceContext{parent, "a=b"};
  e.checksum = codec::event_checksum(e);
  const std::string record = codec::encode_record(e, {});
  // Field 10: [bin 25 (trace ID ‖ parent ID ‖ flags), tracestate].
  const std::string compact = std::string("\x92\xc4\x19", 3) +
                              "\x0a\xf7\x65\x19\x16\xcd\x43\xdd\x84\x48\xeb\x21\x1c\x80\x31\x9c"
                              "\xb7\xad\x6b\x71\x69\x20\x33\x31\x01" "\xa3" "a=b";
  const std::size_t at = record.find(compact);
  REQUIRE(at != std::string::npos);
  const RecordedEvent back = codec::read_record(e.id, record, ReadCheck::full);
  CHECK(back.trace_context == e.trace_context);
  // The checksum covers the text, whichever form is stored (docs/formats.md):
  // the extras hash is SHA-256 of [nil, [traceparent, tracestate]].
  CHECK(codec::extras_hash(codec::RecordFields::of(e)) ==
        codec::sha256(std::string("\x92\xc0\x92\xd9\x37", 5) + parent + "\xa3" "a=b"));

  // The form records had before: [str traceparent, tracestate]; the checksum
  // covers the text in both, so the same checksum verifies it.
  std::string packed = record.substr(0, record.size() - codec::kFastCheckBytes);
  packed.replace(at, 3 + 25, std::string("\x92\xd9\x37", 3) + parent);
  const std::string text_form = with_packed(e.id, packed);
  CHECK(text_form.size() == record.size() + 30);
  const RecordedEvent old = codec::read_record(e.id, text_form, ReadCheck::full);
  CHECK(old.trace_context == e.trace_context);
  CHECK(old.checksum == e.checksum);
  CHECK_NOTHROW(codec::verify_checksum(old));

  // A traceparent of other than 25 bytes, with a fast check that matches: corruption.
  std::string short_packed = record.substr(0, record.size() - codec::kFastCheckBytes);
  short_packed.replace(at, 3 + 25, std::string("\x92\xc4\x18", 3) + compact.substr(3, 24));
  CHECK(lighthouse::testing::error_code_of([&] {
          codec::read_record(e.id, with_packed(e.id, short_packed), ReadCheck::fast);
        }) == ErrorCode::corruption);
}
