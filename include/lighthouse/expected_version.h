// Optimistic concurrency: what a writer expects of an aggregate's stream.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lighthouse/export.h"

namespace lighthouse {

class LIGHTHOUSE_API ExpectedVersion {
 public:
  enum class Kind : std::uint8_t { any, no_stream, stream_exists, exact };

  // Succeeds whatever the aggregate holds.
  static constexpr ExpectedVersion any() noexcept { return ExpectedVersion(Kind::any, 0); }
  // Succeeds iff the aggregate has no events yet.
  static constexpr ExpectedVersion no_stream() noexcept {
    return ExpectedVersion(Kind::no_stream, 0);
  }
  // Succeeds iff the aggregate has at least one event.
  static constexpr ExpectedVersion stream_exists() noexcept {
    return ExpectedVersion(Kind::stream_exists, 0);
  }
  // Succeeds iff the aggregate's last version is exactly `version`
  // (exact(0) is the same as no_stream()).
  static constexpr ExpectedVersion exact(std::uint64_t version) noexcept {
    return ExpectedVersion(Kind::exact, version);
  }

  constexpr Kind kind() const noexcept { return kind_; }
  constexpr std::uint64_t version() const noexcept { return version_; }

  // Returns true iff an aggregate whose last version is `current` satisfies it.
  constexpr bool matches(std::uint64_t current) const noexcept {
    switch (kind_) {
      case Kind::any: return true;
      case Kind::no_stream: return current == 0;
      case Kind::stream_exists: return current > 0;
      case Kind::exact: return current == version_;
    }
    return false;
  }

  // "any", "no_stream", "stream_exists" or the decimal version.
  std::string to_string() const;

  friend constexpr bool operator==(ExpectedVersion, ExpectedVersion) = default;

 private:
  constexpr ExpectedVersion(Kind kind, std::uint64_t version) noexcept
      : kind_(kind), version_(version) {}
  Kind kind_;
  std::uint64_t version_;
};

// One expectation about one aggregate, for a batch.
struct AggregateExpectation {
  std::string aggregate;
  ExpectedVersion expected = ExpectedVersion::any();
};

}  // namespace lighthouse
