// lib/replication's keys in the store's meta (all under "replication/",
// replication_access.h): names, and the encoding of their values.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "lighthouse/error.h"

namespace lighthouse::replication::keys {

// What a read replica follows ("stream 'S' at URLS"): the core refuses
// appends while it is set (schema::meta::kReplicaOf).
inline constexpr std::string_view kReplicaOf = "replica_of";
inline constexpr std::string_view kReplicaStream = "replica_stream";  // the stream's name
// A primary's own ID: the prefix of its messages' Nats-Msg-Id. A promoted
// replica takes a new one, so a stale primary's publishes are never taken
// for the new primary's duplicates.
inline constexpr std::string_view kStoreId = "store_id";

// The confirmed position in `stream`: a decimal sequence.
inline std::string confirmed(const std::string& stream) { return "confirmed/" + stream; }

inline std::uint64_t parse_sequence(const std::optional<std::string>& value, const std::string& what) {
  if (!value) return 0;
  std::uint64_t n = 0;
  if (value->empty() || value->size() > 19) throw Error(ErrorCode::corruption, what + " in meta is not a sequence");
  for (char c : *value) {
    if (c < '0' || c > '9') throw Error(ErrorCode::corruption, what + " in meta is not a sequence");
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

inline std::string new_store_id() {
  std::random_device device;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 4; ++i) {
    const unsigned v = device();
    for (int b = 0; b < 4; ++b) id += kHex[(v >> (b * 4)) & 0xF];
  }
  return id;
}

}  // namespace lighthouse::replication::keys
