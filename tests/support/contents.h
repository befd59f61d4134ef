// The whole content of a store, read by a separate process straight from
// LMDB (tests/support/dump_store.cpp): every entry of every database. Two
// calls around an operation that must write nothing return equal strings.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "support/process.h"

namespace lighthouse::testing {

inline std::string store_contents(const std::filesystem::path& store) {
  ChildResult r = run({helper_path("DUMP_STORE"), store.string()});
  REQUIRE(r.exit_code == 0);
  REQUIRE_FALSE(r.out.empty());
  return r.out;
}

}  // namespace lighthouse::testing
