// Checks of caller input against Options::limits, done before a write
// transaction starts. Each failure is an Error naming the value and the limit.
#pragma once

#include <vector>

#include "lighthouse/options.h"
#include "lighthouse/store.h"

namespace lighthouse::validation {

// Validates one batch; `allow_reserved` admits '$' names (the store's own
// events). Returns the batch's content bytes.
std::size_t check_batch(const Batch& batch, const Limits& limits, bool allow_reserved);

// Validates the totals of one request against the batch limits.
void check_totals(std::size_t events, std::size_t bytes, const Limits& limits);

// A name (type or aggregate) for use in a query or expectation.
void check_name(std::string_view what, std::string_view name, const Limits& limits,
                bool allow_empty, bool allow_reserved);

bool is_valid_utf8(std::string_view text) noexcept;

// A subscription consumer's name: 1-128 bytes of UTF-8.
void check_consumer(std::string_view name);

// Options a store can be opened with: every limit, size, threshold and enum
// in range (Error(invalid_argument) naming the option otherwise).
void check_options(const Options& options);

// An enum value a caller passed, within its enumerators.
void check_priority(Priority priority);

}  // namespace lighthouse::validation
