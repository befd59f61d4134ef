#include <sys/resource.h>
#include <catch2/catch.hpp>

#include <random>

#include "codec/record.h"
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
      RecordedEvent back = codec::decode_record(e.id, bytes);
      codec::verify_checksum(back);
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
  struct rusage before {};
  getrusage(RUSAGE_SELF, &before);
  CHECK(lighthouse::testing::error_code_of([&] { codec::decode_record(EventId{1, 1, 1}, bytes); }) ==
        ErrorCode::corruption);
  struct rusage after {};
  getrusage(RUSAGE_SELF, &after);
  CHECK(after.ru_maxrss - before.ru_maxrss < 64 * 1024);  // KiB: far below the claimed size
}
