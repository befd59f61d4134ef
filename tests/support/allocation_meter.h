// The peak of the bytes this thread allocated through operator new while an
// AllocationMeter lived — exact and per test, unlike the process's lifetime
// peak RSS (getrusage), which an earlier test may have raised already.
// tests/support/allocation_meter.cpp replaces the global operator new and
// delete of the test program to count.
#pragma once

#include <cstddef>

namespace lighthouse::testing {

class AllocationMeter {
 public:
  AllocationMeter();
  ~AllocationMeter();
  AllocationMeter(const AllocationMeter&) = delete;
  AllocationMeter& operator=(const AllocationMeter&) = delete;

  // The most bytes live at once since construction (allocated on this
  // thread and not yet freed), as malloc_usable_size counts them.
  std::size_t peak() const;
  // How many allocations this thread made since construction.
  std::size_t allocations() const;
};

}  // namespace lighthouse::testing
