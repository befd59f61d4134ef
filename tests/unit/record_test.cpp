#include <catch2/catch.hpp>

#include <random>

#include "codec/record.h"
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

}  // namespace

TEST_CASE("the canonical encoding matches docs/formats.md byte for byte", "[record]") {
  RecordedEvent e = sample();
  std::string canonical = codec::canonical_encoding(e.id, codec::RecordFields::of(e));
  CHECK(hex(canonical) == "97a5315f325f33a154a0010081a16ba176c4020102");
  CHECK(codec::event_checksum(e) == codec::sha256(canonical));
}

TEST_CASE("SHA-256 matches the standard test vector", "[record]") {
  CHECK(to_hex(codec::sha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("metadata is encoded sorted bytewise whatever the insertion order", "[record]") {
  RecordedEvent a = sample();
  a.metadata = {{"b", "2"}, {"a", "1"}, {"\xc3\xa9", "3"}};
  RecordedEvent b = sample();
  b.metadata.clear();
  b.metadata["\xc3\xa9"] = "3";
  b.metadata["a"] = "1";
  b.metadata["b"] = "2";
  CHECK(codec::event_checksum(a) == codec::event_checksum(b));
  std::string canonical = codec::canonical_encoding(a.id, codec::RecordFields::of(a));
  CHECK(hex(canonical).find("83a161a131a162a132a2c3a9a133") != std::string::npos);
}

TEST_CASE("records round-trip, compressed or not", "[record]") {
  RecordedEvent e = sample();
  e.idempotency_key = "key";
  for (std::size_t threshold : {std::size_t{0}, std::size_t{1}}) {
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
    CHECK_NOTHROW(codec::verify_checksum(back));
  }
}

TEST_CASE("checksums hashed from the stored bytes equal those of the canonical encoding", "[record]") {
  // Reads and seal_record hash a record's own bytes (fields 2..7) behind the
  // ID instead of re-encoding: for every shape of event they must give the
  // checksum docs/formats.md defines.
  std::vector<RecordedEvent> shapes;
  shapes.push_back(sample());
  RecordedEvent e = sample();
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
    const Sha256 previous = codec::sha256("previous");
    std::string record;
    const auto sealed = codec::seal_record(record, shape.id, codec::RecordFields::of(shape), previous, {});
    CHECK(sealed.checksum == codec::event_checksum(shape));
    CHECK(sealed.chain == codec::chain_next(previous, sealed.checksum));
    std::string_view tail;
    RecordedEvent back = codec::decode_record(shape.id, record, &tail);
    REQUIRE_FALSE(tail.empty());
    CHECK(codec::stored_checksum(shape.id, tail) == codec::event_checksum(shape));
    CHECK(back.checksum == sealed.checksum);
    CHECK(back.chain == sealed.chain);
    CHECK(codec::checksum_matches(back, tail));
    // Compressed data has no stored canonical bytes: the tail is empty and the
    // checksum is computed from the decoded fields.
    if (shape.data.size() > 1000) {
      std::string compressed;
      const auto sealed_z =
          codec::seal_record(compressed, shape.id, codec::RecordFields::of(shape), previous, {1, 3});
      CHECK(compressed.size() < record.size());
      CHECK(sealed_z.checksum == sealed.checksum);
      RecordedEvent back_z = codec::decode_record(shape.id, compressed, &tail);
      CHECK(tail.empty());
      CHECK(codec::checksum_matches(back_z, tail));
    }
  }
}

TEST_CASE("a valid record not in canonical form still verifies; a damaged one does not", "[record]") {
  // Hand-made record of sample(): the type "T" as a str8 (d9 01 54) instead of
  // a fixstr, so the stored bytes are not the canonical encoding; the checksum
  // is the canonical one.
  RecordedEvent e = sample();
  std::string digest_bin = "\xc4\x20";
  std::string record = std::string("\x9b\x01\x00\xd9\x01T\xa0\x01\x00\x81\xa1k\xa1v\xc4\x02\x01\x02\xc0", 19) +
                       digest_bin + std::string(reinterpret_cast<const char*>(e.checksum.data()), 32) +
                       digest_bin + std::string(reinterpret_cast<const char*>(e.chain.data()), 32);
  std::string_view tail;
  RecordedEvent back = codec::decode_record(e.id, record, &tail);
  CHECK(back.type == "T");
  REQUIRE_FALSE(tail.empty());
  CHECK(codec::stored_checksum(e.id, tail) != e.checksum);  // the fast path misses...
  CHECK(codec::checksum_matches(back, tail));                // ...and the canonical one decides
  CHECK_NOTHROW(codec::verify_checksum(back, tail));
  // The same record with one data byte changed fails both ways.
  std::string damaged = record;
  damaged[17] = '\x03';
  RecordedEvent bad = codec::decode_record(e.id, damaged, &tail);
  CHECK_FALSE(codec::checksum_matches(bad, tail));
  CHECK_THROWS_AS(codec::verify_checksum(bad, tail), Error);
}

TEST_CASE("metadata stored out of order or twice is never verified from its stored bytes", "[record]") {
  // A crafted record whose checksum covers its own (non-canonical) bytes:
  // metadata {"k": "v", "a": "1"} unsorted. What is read (sorted) is not what
  // was hashed, so it must not verify.
  RecordedEvent e = sample();
  const std::string tail_bytes("\xa1T\xa0\x01\x00\x82\xa1k\xa1v\xa1" "a\xa1" "1\xc4\x02\x01\x02", 18);
  const Sha256 crafted = codec::stored_checksum(e.id, tail_bytes);
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
      std::string_view tail;
      RecordedEvent back = codec::decode_record(e.id, bytes, &tail);
      if (round % 2 == 0) codec::verify_checksum(back, tail);  // from the stored bytes
      else codec::verify_checksum(back);                       // re-encoded
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
